; Function definitions.
(function_definition declarator: (_) @name body: (compound_statement) @body) @function
