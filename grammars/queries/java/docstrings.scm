; Javadoc.
((block_comment) @docstring (#match? @docstring "^/[*][*]"))
