; Free functions, methods in impl and trait blocks (with a default body), closures with blocks.
(function_item name: (identifier) @name body: (block) @body) @function
(closure_expression body: (block) @body) @function
