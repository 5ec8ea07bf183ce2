#!/usr/bin/env bash
# A replication check of one model, for any CI system (docs/ci.md): `pytest claims/ --model X` against the
# model's expectations file, with the suite's cache and the reports where the CI keeps them.
#
# Needs the suite's environment, installed as the README's "Setup" says; this script installs nothing.
# It runs from the suite's checkout (found from the script's own path), so relative paths below are
# taken from the directory it is called from.
#
#   CLAIMS_MODEL         the --model value (default smollm2-135m)
#   CLAIMS_CACHE         the suite's cache, --claims-cache: keep it between runs
#                        (default $SENTIMENT_CLAIMS_CACHE, else ~/.cache/sentiment-claims)
#   CLAIMS_REPORTS       --report-dir: <model>/REPORT.md, results.json, figures/ (default reports)
#   CLAIMS_EXPECTATIONS  --expectations-dir, where <model>.toml is read (default: the suite's claims/expectations/)
#   CLAIMS_ARGS          more pytest arguments, split on whitespace ("-k p0 --device cuda"); arguments that
#                        hold spaces go after the script's name instead: replicate.sh -k "d1 and layer0"
#   PYTHON               the interpreter (default: the suite's .venv/bin/python if there is one, else python3)
#   HF_HOME              the Hugging Face cache (hub models): keep it between runs too
#
# Exit status: pytest's. 0: every verdict is the one the expectations file records. 1: a verdict or a
# value drifted (ExpectationOutdated names the entry), or a claim failed; the reports are written either way.
set -eu

absolute() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

model=${CLAIMS_MODEL:-smollm2-135m}
cache=$(absolute "${CLAIMS_CACHE:-${SENTIMENT_CLAIMS_CACHE:-$HOME/.cache/sentiment-claims}}")
reports=$(absolute "${CLAIMS_REPORTS:-reports}")
set -- --model "$model" --claims-cache "$cache" --report-dir "$reports" "$@"
if [ -n "${CLAIMS_EXPECTATIONS:-}" ]; then
    set -- --expectations-dir "$(absolute "$CLAIMS_EXPECTATIONS")" "$@"
fi

cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then python=.venv/bin/python; fi

status=0
set -f  # CLAIMS_ARGS is split on whitespace, never globbed
# shellcheck disable=SC2086
"$python" -m pytest claims/ "$@" ${CLAIMS_ARGS:-} || status=$?
set +f

echo "replication check of $model: pytest exit status $status; reports in $reports" >&2
exit "$status"
