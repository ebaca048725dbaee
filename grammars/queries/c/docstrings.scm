; Doxygen-style comments: /** */, /*! */, ///, //!.
((comment) @docstring (#match? @docstring "^(/[*][*!]|//[/!])"))
