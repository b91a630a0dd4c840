"""The CJK font the PDFs need, checked before a PDF is rendered.

WeasyPrint finds fonts through fontconfig; without a CJK font every Chinese character would be
drawn as an empty box and the PDF would still be made. So rendering refuses to start without
one, and says how to install it: ``./siteflow.sh up``, ``demo`` and ``test`` install the
Debian package ``fonts-noto-cjk`` (Noto Sans CJK SC and Noto Serif CJK SC).
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

SANS = "Noto Sans CJK SC"
SERIF = "Noto Serif CJK SC"
KNOWN_FILES = (  # where Debian's fonts-noto-cjk puts them, for a host without fc-list
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
)
MISSING = (
    "缺少中文字体 Noto Sans CJK SC，无法生成 PDF / The CJK font 'Noto Sans CJK SC' is not installed, "
    "so the PDF cannot be made (Chinese text would print as empty boxes). Install it: "
    "`sudo apt-get install fonts-noto-cjk` (Debian/Ubuntu; `./siteflow.sh up` does it), then try again."
)


class CjkFontMissing(RuntimeError):
    """No CJK font for the PDFs; the message says how to install one."""


@lru_cache(maxsize=1)
def cjk_font_installed() -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return all(path.exists() for path in KNOWN_FILES[:1])
    found = subprocess.run(
        [fc_list, f"{SANS}:lang=zh-cn", "family"], capture_output=True, text=True, check=False
    )
    return SANS in found.stdout


def require_cjk_font() -> None:
    if not cjk_font_installed():
        raise CjkFontMissing(MISSING)
