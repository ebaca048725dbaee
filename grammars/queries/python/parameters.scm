; A function's parameters and the body that should use them. @function: the definition;
; @parameter: each parameter's name; @body: its block.
(function_definition
  parameters: (parameters
    [(identifier) @parameter
     (typed_parameter (identifier) @parameter)
     (default_parameter name: (identifier) @parameter)
     (typed_default_parameter name: (identifier) @parameter)])
  body: (block) @body) @function
