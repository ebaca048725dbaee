; Docstrings: a string that is the first statement of a function, class or module body.
(function_definition
  body: (block . (expression_statement (string) @docstring)))
(class_definition
  body: (block . (expression_statement (string) @docstring)))
(module . (expression_statement (string) @docstring))
