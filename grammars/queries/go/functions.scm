; Functions, methods and function literals.
(function_declaration name: (identifier) @name body: (block) @body) @function
(method_declaration name: (field_identifier) @name body: (block) @body) @function
(func_literal body: (block) @body) @function
