# What every build script here says the same way, sourced after it sets PROG (its path from the repo root):
# errors and progress on stderr, each line naming the script; --help prints the script's own header comment.
die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }
#   usage LAST    print the calling script's header (lines 2..LAST, without the '# ') and exit 0
usage() { sed -n "2,${1}p" "${BASH_SOURCE[-1]}" | sed 's/^# \{0,1\}//'; exit 0; }
