; Function and method definitions, lambdas.
(function_definition declarator: (_) @name body: (compound_statement) @body) @function
(lambda_expression body: (compound_statement) @body) @function
