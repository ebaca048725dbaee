; Methods, constructors and block lambdas.
(method_declaration name: (identifier) @name body: (block) @body) @function
(constructor_declaration name: (identifier) @name body: (constructor_body) @body) @function
(lambda_expression body: (block) @body) @function
