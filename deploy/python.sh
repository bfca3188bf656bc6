# Sourced by the install and test scripts: finds the interpreters Airlock needs.
#   AIRLOCK_PYTHON  Python >= 3.12 for Airlock itself (mitmproxy 12 needs it)

find_python() {  # find_python MINOR... : prints the first working interpreter found, or fails
    local minor candidate version
    for minor in "$@"; do
        candidates=("python3.${minor}")
        if command -v pyenv >/dev/null 2>&1; then
            for version in $(pyenv versions --bare 2>/dev/null | grep -E "^3\.${minor}\.[0-9]+$"); do
                candidates+=("$(pyenv root)/versions/${version}/bin/python3.${minor}")
            done
        fi
        for candidate in "${candidates[@]}"; do
            # pyenv shims exist on PATH even where they cannot run: try each one.
            if "$candidate" -c 'import sys, venv' >/dev/null 2>&1; then
                "$candidate" -c 'import sys; print(sys.executable)'
                return 0
            fi
        done
    done
    return 1
}

AIRLOCK_PYTHON=${AIRLOCK_PYTHON:-$(find_python 12 13)} || {
    echo "Airlock needs Python 3.12 or newer (python3.12 / python3.13 on PATH, or pyenv)" >&2
    exit 1
}
export AIRLOCK_PYTHON
