"""The shape every probe-script error must have: ``FILE:LINE:COL: error: MESSAGE``, the line,
and a caret under the column."""


def assert_points_at(err, src: str, line: int, col: int, words: str, filename: str = "t.bt"):
    assert words in err.message, err.message
    assert (err.line, err.col) == (line, col), str(err)
    head, shown, caret = str(err).splitlines()
    assert head.startswith(f"{filename}:{line}:{col}: error: ")
    assert shown == src.splitlines()[line - 1]
    assert caret.index("^") == col - 1
