# Sourced by scripts/*: create or refresh .venv with the project installed.
# Usage: ensure_venv [extras]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

ensure_venv() {
    local extras="${1:-}"
    local spec="$ROOT"
    [ -n "$extras" ] && spec="$ROOT[$extras]"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "creating $VENV" >&2
        python3 -m venv "$VENV"
    fi
    # Reinstall only when the project metadata changed or the extras are missing,
    # so that repeated runs start in a second.
    local stamp="$VENV/.balance-tui-installed-${extras:-base}"
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        echo "installing balance-tui${extras:+[$extras]} into $VENV" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 \
            | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
        "$VENV/bin/python" -c "import balance_tui" || { echo "install failed" >&2; exit 1; }
        touch "$stamp"
    fi
}
