; JSDoc comments: /** ... */ anywhere (the one right before a function documents it).
((comment) @docstring (#match? @docstring "^/[*][*]"))
