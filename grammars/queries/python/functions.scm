; Function and method bodies. @function: the whole definition (decorators are on the
; enclosing decorated_definition); @name; @body: the block to fill.
(function_definition
  name: (identifier) @name
  body: (block) @body) @function
