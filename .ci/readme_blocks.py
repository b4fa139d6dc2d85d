"""Print the README's code blocks marked for CI, so CI runs exactly what a user reads.

A block is marked by the line `<!-- ci: user-path -->` right before its opening fence. Usage:
  python .ci/readme_blocks.py README.md bash     -> the marked bash blocks, in order
  python .ci/readme_blocks.py README.md python   -> the marked python blocks, joined
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARK = "<!-- ci: user-path -->"
BLOCK = re.compile(re.escape(MARK) + r"\s*\n```(\w+)\n(.*?)\n```", re.S)


def marked_blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(text) if lang == language]


if __name__ == "__main__":
    blocks = marked_blocks(Path(sys.argv[1]).read_text(), sys.argv[2])
    if not blocks:
        sys.exit(f"no {sys.argv[2]} blocks marked {MARK!r} in {sys.argv[1]}")
    print("\n\n".join(blocks))
