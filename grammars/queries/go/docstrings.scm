; Go doc comments are the plain comments right before a declaration.
((comment) @docstring . [(function_declaration) (method_declaration) (type_declaration)])
