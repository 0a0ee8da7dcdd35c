"""Importing the package must import neither framework."""

import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, gradcam_widgets as gw; gw.overlay; gw.data; gw.zoo; gw.figures; gw.Explorer; "
        "gw.exercises; gw.gradcam; "
        "print(' '.join(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_unknown_attribute():
    import gradcam_widgets as gw

    try:
        gw.does_not_exist  # noqa: B018
    except AttributeError as error:
        assert "does_not_exist" in str(error)
    else:
        raise AssertionError("expected AttributeError")
