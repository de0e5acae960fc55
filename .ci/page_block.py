"""Writes the one code block of a guide whose info string is exactly INFO to OUT, as the
page shows it (used by .ci/sdk, .ci/audit and .ci/mcp, which run a page's `ci=NAME` block).

    python3 .ci/page_block.py PAGE INFO OUT
"""

import re
import sys

page, info, out = sys.argv[1:4]
text = open(page, encoding="utf-8").read()
blocks = re.findall(r"^```" + re.escape(info) + r"\n(.*?)^```", text, re.S | re.M)
if len(blocks) != 1:
    sys.exit(f"expected one `{info}` block in {page}, found {len(blocks)}")
open(out, "w", encoding="utf-8").write(blocks[0])
