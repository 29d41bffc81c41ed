# Sourced by the scripts: build as the user who asked, elevate only for what
# needs root. Works as root, through sudo, and as a user (with sudo to
# elevate); a minimal Debian has no sudo, and sudo's secure_path drops
# ~/.cargo/bin, so cargo is looked up in the invoking user's home.

# The user whose toolchain builds: under sudo the one who ran sudo.
build_user() {
  if [ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    echo "$SUDO_USER"
  else
    id -un
  fi
}

# The directory holding that user's cargo: $CARGO_HOME/bin, ~/.cargo/bin, or PATH.
cargo_dir() {
  local home
  home=$(getent passwd "$(build_user)" | cut -d: -f6)
  for d in ${CARGO_HOME:+"$CARGO_HOME/bin"} "$home/.cargo/bin"; do
    if [ -x "$d/cargo" ]; then echo "$d"; return; fi
  done
  if command -v cargo >/dev/null; then dirname "$(command -v cargo)"; return; fi
  echo "$0: cargo not found in \$CARGO_HOME/bin, $home/.cargo/bin or PATH: install Rust 1.88 or newer with rustup (https://rustup.rs)" >&2
  return 1
}

# CMD as the build user, with their cargo on PATH.
as_user() {
  local dir user
  dir=$(cargo_dir) || return 1
  user=$(build_user)
  if [ "$user" != "$(id -un)" ]; then
    # runuser (util-linux, always there) sets HOME, so rustup finds the
    # user's toolchains.
    runuser -u "$user" -- env PATH="$dir:$PATH" "$@"
  else
    PATH="$dir:$PATH" "$@"
  fi
}

# CMD as root: directly, or through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "$0: '$*' needs root, and there is no sudo: run $0 as root" >&2
    return 1
  fi
}
