; Function, method and arrow-function bodies (block bodies only: an expression-bodied
; arrow has nothing to write into).
(function_declaration name: (identifier) @name body: (statement_block) @body) @function
(generator_function_declaration name: (identifier) @name body: (statement_block) @body) @function
(function_expression body: (statement_block) @body) @function
(arrow_function body: (statement_block) @body) @function
(method_definition name: (_) @name body: (statement_block) @body) @function
