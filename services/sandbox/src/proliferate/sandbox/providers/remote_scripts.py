"""Small Python programs run inside Modal/E2B sandboxes through `exec` (argv only, never
interpolated): atomic file placement with modes, and a bounded tree listing for ReadFiles."""

from __future__ import annotations

# argv: mode tmp final [mode tmp final ...]; parents are created; rename is atomic.
PLACE_FILES = r"""
import os, sys
args = sys.argv[1:]
for i in range(0, len(args), 3):
    mode, tmp, final = int(args[i], 8), args[i + 1], args[i + 2]
    os.chmod(tmp, mode)
    os.replace(tmp, final)
"""

# argv: home folder; prints JSON [[relative path, size], ...] of regular files that resolve inside home.
LIST_TREE = r"""
import json, os, sys
home, folder = os.path.realpath(sys.argv[1]), sys.argv[2]
real = os.path.realpath(folder)
out = []
if (real == home or real.startswith(home + os.sep)) and os.path.isdir(real):
    for d, dirs, files in os.walk(real):
        dirs[:] = sorted(x for x in dirs if not os.path.islink(os.path.join(d, x)))
        for name in sorted(files):
            p = os.path.join(d, name)
            rp = os.path.realpath(p)
            if (rp == home or rp.startswith(home + os.sep)) and os.path.isfile(rp):
                out.append([os.path.relpath(p, real), os.path.getsize(rp)])
elif os.path.exists(real):
    print("OUTSIDE", file=sys.stderr)
    sys.exit(3)
print(json.dumps(sorted(out)))
"""

# Sources the session env (when present) and runs argv under `timeout` (exit 124).
EXEC_WRAPPER = 'set -a; [ -r "$PROLIFERATE_SESSION_ENV" ] && . "$PROLIFERATE_SESSION_ENV"; set +a; exec "$@"'
