# Sourced by every fake tool (see README.md): logs the call, fails on demand.
fake_tool=$(basename "$0")
printf '%s\n' "$fake_tool $*" >>"${FAKE_LOG:?FAKE_LOG must be set}"

# fake_fail_if_asked NAME [EXIT]: exit with an error when NAME is listed in FAKE_FAIL.
fake_fail_if_asked() {
  case ",${FAKE_FAIL:-}," in
  *",$1,"*)
    echo "${FAKE_FAIL_MESSAGE:-$1: failed on demand}" >&2
    exit "${2:-5}"
    ;;
  esac
}
