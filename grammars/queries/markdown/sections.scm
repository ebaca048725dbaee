; A section is a heading plus everything up to the next heading of the same or higher
; level (tree-sitter-markdown nests them). @heading: its heading line(s).
(section [(atx_heading) (setext_heading)] @heading) @section
