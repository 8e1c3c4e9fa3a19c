#!/usr/bin/env bash
# Builds the Partyline Raspberry Pi image: arm64, Debian trixie packages only
# (Node 20.19), the firmware installed with its production dependencies built
# inside an arm64 root under qemu-user. See image/README.md.
#
#   image/build.sh [rootfs|image]     (npm run image = image/build.sh image)
#
#   rootfs  stop after the root file system ($OUT/rootfs): what test:image runs
#   image   also the SD card image $OUT/partyline-arm64.img (default)
#
# Environment:
#   PARTYLINE_IMAGE_OUT     output and cache folder (default image/build)
#   PARTYLINE_IMAGE_MIRROR  Debian mirror (default: the first of this machine's apt sources)
#   PARTYLINE_IMAGE_PINS    a manifest of an earlier build: install exactly its package versions
#   PARTYLINE_IMAGE_*       the phone's configuration (image/render-config.mjs)
#   PARTYLINE_IMAGE_NO_CACHE=1  ignore the cached base root and firmware build
#
# Needs root (chroot, ownership in the file systems). Installs the host tools
# it lacks (mmdebstrap, qemu-user-static, binfmt-support, dosfstools, mtools,
# fdisk, e2fsprogs). Uses no loop device: the partitions are made as files
# (mkfs.ext4 -d, mkfs.vfat + mcopy) and laid into the image with dd.
set -euo pipefail

STAGE=${1:-image}
case "$STAGE" in rootfs|image) ;; *) echo "usage: $0 [rootfs|image]" >&2; exit 2 ;; esac

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${PARTYLINE_IMAGE_OUT:-$REPO/image/build}
SUITE=trixie
ARCH=arm64
COMPONENTS=main,non-free-firmware
# What the phone runs with. Kernel and Pi boot firmware from Debian
# (linux-image-arm64 carries the bcm27xx device trees; raspi-firmware the GPU
# boot files and the hook that fills /boot/firmware).
RUNTIME_PACKAGES=(
  systemd systemd-sysv systemd-resolved systemd-timesyncd udev dbus
  iproute2 ca-certificates nodejs
  libportaudio2 alsa-utils libusb-1.0-0 libudev1
  cloud-guest-utils fdisk e2fsprogs
  linux-image-arm64 raspi-firmware firmware-brcm80211
)
# Only in the throw-away builder copy of the root, never in the image.
BUILD_PACKAGES=(build-essential python3 libnode-dev)

log() { printf '%s image/build.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# Heavy steps give way to everything else on the machine.
heavy() { nice -n 19 "$@"; }

[ "$(id -u)" = 0 ] || die "must run as root (chroot, file ownership in the image)"
START=$(date +%s)

host_tools() {
  local need=()
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
  [ -e /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
  command -v update-binfmts >/dev/null || need+=(binfmt-support)
  command -v mkfs.vfat >/dev/null || need+=(dosfstools)
  command -v mcopy >/dev/null || need+=(mtools)
  command -v sfdisk >/dev/null || need+=(fdisk)
  command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
  command -v arch-test >/dev/null || need+=(arch-test)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing host tools: ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  [ -d /proc/sys/fs/binfmt_misc ] && [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  arch-test arm64 >/dev/null || die "this machine cannot run arm64 programs (qemu-user-static + binfmt_misc)"
}

mirror() {
  if [ -n "${PARTYLINE_IMAGE_MIRROR:-}" ]; then echo "$PARTYLINE_IMAGE_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n' | grep -v security | head -n 1 || true)
  [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n 1 || true)
  [ -n "$uri" ] || die "no Debian mirror in this machine's apt sources: set PARTYLINE_IMAGE_MIRROR"
  echo "$uri"
}

# "pkg" or "pkg=version" when a pin manifest is given.
pinned() {
  local pkg
  for pkg in "$@"; do
    local version=""
    [ -n "${PARTYLINE_IMAGE_PINS:-}" ] && version=$(awk -F= -v p="$pkg" '$1 == p { print $2 }' "$PARTYLINE_IMAGE_PINS" | head -n 1)
    if [ -n "$version" ]; then echo "$pkg=$version"; else echo "$pkg"; fi
  done
}

MOUNTED=()
mount_api() { # root
  mount -t proc proc "$1/proc"; MOUNTED+=("$1/proc")
  mount -t sysfs sys "$1/sys"; MOUNTED+=("$1/sys")
  mount --bind /dev "$1/dev"; MOUNTED+=("$1/dev")
  mount -t devpts devpts "$1/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null && MOUNTED+=("$1/dev/pts") || true
}
unmount_all() {
  local i
  for (( i=${#MOUNTED[@]}-1; i>=0; i-- )); do umount -l "${MOUNTED[$i]}" 2>/dev/null || true; done
  MOUNTED=()
}
trap unmount_all EXIT

in_root() { # root command...
  local root=$1; shift
  heavy chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

host_tools
MIRROR=$(mirror)
mkdir -p "$OUT/cache"
WORK="$OUT/work"
rm -rf "$WORK"
mkdir -p "$WORK"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}

# 1. The firmware package, built on this machine (TypeScript to dist/).
log "building the firmware (npm run build, npm pack)"
cd "$REPO"
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
PKG=$(npm pack --silent --pack-destination "$WORK" | tail -n 1)
cp package-lock.json "$WORK/package-lock.json"

# 2. The base root: Debian trixie arm64 with the runtime packages, cached by
#    its inputs and the archive's state (its InRelease Date: it changes when
#    Debian publishes, e.g. a point release; a cache keyed by the calendar day
#    made every build on a new day a cold one, about 55 minutes).
mapfile -t RUNTIME < <(pinned "${RUNTIME_PACKAGES[@]}")
ARCHIVE_DATE=$(node -e 'fetch(process.argv[1]).then((r) => (r.ok ? r.text() : "")).then((t) => console.log((/^Date: (.*)$/m.exec(t) || [])[1] ?? ""), () => console.log(""))' \
  "${MIRROR%/}/dists/$SUITE/InRelease")
[ -n "$ARCHIVE_DATE" ] || { log "cannot read ${MIRROR%/}/dists/$SUITE/InRelease: the base is keyed by today's date"; ARCHIVE_DATE="unknown $(date -u +%Y-%m-%d)"; }
BASE_KEY=$(printf '%s\n' "$SUITE" "$ARCH" "$COMPONENTS" "$MIRROR" "${RUNTIME[@]}" "$ARCHIVE_DATE" | sha256sum | cut -c1-16)
BASE_TAR="$OUT/cache/base-$BASE_KEY.tar"
ROOT="$WORK/rootfs"
if [ -s "$BASE_TAR" ] && [ -z "${PARTYLINE_IMAGE_NO_CACHE:-}" ]; then
  log "base root from cache ($BASE_TAR)"
  mkdir -p "$ROOT" && tar -C "$ROOT" -xpf "$BASE_TAR"
else
  log "mmdebstrap $SUITE $ARCH from $MIRROR (${#RUNTIME[@]} packages and their dependencies; dpkg runs under qemu-user)"
  heavy mmdebstrap --quiet --architectures=$ARCH --variant=minbase --components=$COMPONENTS \
    --include="$(IFS=,; echo "${RUNTIME[*]}")" \
    --setup-hook='mkdir -p "$1/boot/firmware"' \
    --customize-hook='echo partyline > "$1/etc/hostname"' \
    "$SUITE" "$ROOT" "$MIRROR"
  rm -f "$OUT"/cache/base-*.tar "$OUT"/cache/base-*.tar.date
  tar -C "$ROOT" -cpf "$BASE_TAR.part" . && mv "$BASE_TAR.part" "$BASE_TAR"
fi
# The archive's state the packages came from, kept beside the cached base (for the manifest).
[ -s "$BASE_TAR.date" ] || echo "$ARCHIVE_DATE" > "$BASE_TAR.date"
if [ -n "${PARTYLINE_IMAGE_PINS:-}" ]; then
  log "checking installed versions against $PARTYLINE_IMAGE_PINS"
  for p in "${RUNTIME[@]}"; do
    case "$p" in *=*) have=$(chroot "$ROOT" dpkg-query -W -f '${Version}' "${p%%=*}"); [ "$have" = "${p#*=}" ] || die "${p%%=*}: pinned ${p#*=}, installed $have";; esac
  done
fi

# 3. The firmware's production dependencies, built for arm64 in a builder copy
#    of the root (same libraries; compilers and headers stay out of the image).
LOCK_KEY=$(cat "$WORK/package-lock.json" "$REPO/hal/audio/naudiodon-arm64.mjs" | sha256sum | cut -c1-16)
MODULES_TAR="$OUT/cache/node-modules-$BASE_KEY-$LOCK_KEY.tar"
mkdir -p "$ROOT/opt/partyline"
tar -C "$ROOT/opt/partyline" --strip-components=1 -xzf "$WORK/$PKG"
cp "$WORK/package-lock.json" "$ROOT/opt/partyline/"
if [ -s "$MODULES_TAR" ] && [ -z "${PARTYLINE_IMAGE_NO_CACHE:-}" ]; then
  log "arm64 node_modules from cache ($MODULES_TAR)"
else
  BUILDER="$WORK/builder"
  log "builder root: copy of the base + ${BUILD_PACKAGES[*]}"
  cp -a "$ROOT" "$BUILDER"
  rm -f "$BUILDER/etc/resolv.conf" && cp -L /etc/resolv.conf "$BUILDER/etc/resolv.conf"
  mount_api "$BUILDER"
  in_root "$BUILDER" apt-get update -qq
  mapfile -t BUILD < <(pinned "${BUILD_PACKAGES[@]}")
  in_root "$BUILDER" apt-get install -y -qq --no-install-recommends "${BUILD[@]}" >/dev/null
  # npm: the one this project's lockfile and allowScripts are made for, from this machine (plain JavaScript).
  NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  cp -a "$NPM_DIR" "$BUILDER/opt/npm"
  # The registry as this machine reaches it: its registry setting and its CA bundle (a TLS-inspecting
  # proxy's CA lives there). Only the builder sees them; nothing of it goes into the image.
  NPM_REGISTRY=$(npm config get registry)
  cp -L "$(npm config get cafile 2>/dev/null | grep -v '^null$' || echo /etc/ssl/certs/ca-certificates.crt)" "$BUILDER/tmp/build-ca.crt"
  log "npm ci --omit=dev in the arm64 root (native modules compile under qemu-user: the slow part)"
  in_root "$BUILDER" /usr/bin/env npm_config_registry="$NPM_REGISTRY" /bin/sh -euc '
    cd /opt/partyline
    export npm_config_cafile=/tmp/build-ca.crt NODE_EXTRA_CA_CERTS=/tmp/build-ca.crt
    # GCC 14 (trixie) makes implicit declarations errors; @discordjs/opus 0.10 compiles celt/arm/celt_neon_intr.c
    # on arm64 although its arm64 config.h enables no NEON path, and that dead code calls an undeclared
    # celt_inner_prod_neon. A warning again; the encoder uses the C kernels either way.
    export CFLAGS=-Wno-error=implicit-function-declaration
    # naudiodon 2.3.6 uses std::string in src/PaContext.h without including <string>; GCC 12 headers
    # brought it in by the way, GCC 14 headers do not.
    export CXXFLAGS="-include string"
    export npm_config_nodedir=/usr npm_config_cache=/tmp/npm-cache npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false JOBS=2
    npm() { node /opt/npm/bin/npm-cli.js "$@"; }
    npm ci --omit=dev --ignore-scripts
    node hal/audio/naudiodon-arm64.mjs --patch-only
    npm rebuild
    for m in better-sqlite3 @discordjs/opus naudiodon node-hid epoll unix-dgram segfault-handler; do
      node -e "require(process.argv[1])" "$m" || { echo "native module $m does not load" >&2; exit 1; }
    done
    echo "all native modules load on $(node -p "process.arch + \" node \" + process.version")"
  '
  unmount_all
  rm -f "$OUT"/cache/node-modules-*.tar
  tar -C "$BUILDER/opt/partyline" -cpf "$MODULES_TAR.part" node_modules && mv "$MODULES_TAR.part" "$MODULES_TAR"
  rm -rf "$BUILDER"
fi
tar -C "$ROOT/opt/partyline" -xpf "$MODULES_TAR"
chmod 0755 "$ROOT/opt/partyline/dist/src/cli/main.js"
ln -sf /opt/partyline/dist/src/cli/main.js "$ROOT/usr/bin/partyline"

# 4. The appliance: users, units, configuration, devices, watchdog, journal, mounts.
log "configuring the appliance"
F="$REPO/image/files"
install -D -m 0644 "$REPO/systemd/sysusers.d/partyline.conf" "$ROOT/usr/lib/sysusers.d/partyline.conf"
# The root is read-only on the device: users must exist in /etc/passwd now.
in_root "$ROOT" systemd-sysusers
install -m 0644 "$REPO/systemd/partyline.service" "$REPO/systemd/partyline-login.service" "$F/partyline-firstboot.service" "$ROOT/usr/lib/systemd/system/"
install -D -m 0755 "$F/firstboot" "$ROOT/usr/lib/partyline/firstboot"
install -d -m 0755 "$ROOT/etc/partyline"
node "$REPO/image/render-config.mjs" "$ROOT/etc/partyline/config.yaml"
node "$REPO/dist/src/cli/main.js" config check "$ROOT/etc/partyline/config.yaml" >/dev/null || die "the rendered /etc/partyline/config.yaml is invalid"
chmod 0644 "$ROOT/etc/partyline/config.yaml"
install -m 0644 "$REPO/config/udev/70-partyline-keypad.rules" "$F/60-partyline-gpio.rules" "$ROOT/etc/udev/rules.d/"
install -m 0644 "$F/asound.conf" "$ROOT/etc/asound.conf"
install -D -m 0644 "$F/watchdog.conf" "$ROOT/etc/systemd/system.conf.d/50-partyline-watchdog.conf"
install -D -m 0644 "$F/journald.conf" "$ROOT/etc/systemd/journald.conf.d/50-partyline.conf"
install -D -m 0644 "$F/20-wired.network" "$ROOT/etc/systemd/network/20-wired.network"
# Boot files: the hardware watchdog on, Debian's kernel, root by label.
cat > "$ROOT/etc/default/raspi-firmware-custom" <<'EOF'
dtparam=watchdog=on
dtparam=audio=on
EOF
sed -i 's/^#\?ROOTPART=.*/ROOTPART=LABEL=PLROOT/' "$ROOT/etc/default/raspi-firmware"
grep -q '^ROOTPART=LABEL=PLROOT' "$ROOT/etc/default/raspi-firmware" || echo 'ROOTPART=LABEL=PLROOT' >> "$ROOT/etc/default/raspi-firmware"
# Read-only root; state on the data partition, bound where the units expect it.
mkdir -p "$ROOT/var/lib/partyline-data" "$ROOT/var/lib/partyline" "$ROOT/var/lib/partyline-login" "$ROOT/var/lib/systemd/timesync"
cat > "$ROOT/etc/fstab" <<'EOF'
# Partyline appliance: read-only root, writable data partition (grown to the card's end at first boot).
LABEL=PLROOT  /                         ext4   ro,noatime                    0 1
LABEL=PLBOOT  /boot/firmware            vfat   ro,noatime,umask=0022         0 2
LABEL=PLDATA  /var/lib/partyline-data   ext4   rw,noatime,commit=30          0 2
/var/lib/partyline-data/partyline        /var/lib/partyline        none  bind,x-systemd.requires-mounts-for=/var/lib/partyline-data  0 0
/var/lib/partyline-data/partyline-login  /var/lib/partyline-login  none  bind,x-systemd.requires-mounts-for=/var/lib/partyline-data  0 0
/var/lib/partyline-data/timesync         /var/lib/systemd/timesync none  bind,x-systemd.requires-mounts-for=/var/lib/partyline-data  0 0
tmpfs         /var/tmp                  tmpfs  nosuid,nodev,size=32M         0 0
EOF
# An empty machine-id on a read-only root: systemd makes a transient one each boot
# (D-Bus reads it through the link systemd-tmpfiles would otherwise try to make).
: > "$ROOT/etc/machine-id"
mkdir -p "$ROOT/var/lib/dbus"
ln -sfn /etc/machine-id "$ROOT/var/lib/dbus/machine-id"
# StateDirectory= of systemd's own units cannot be made on a read-only root:
# made now (root, 0755, what the units ask), systemd only checks them at boot.
# Without /var/lib/systemd/linger, systemd-logind does not start (seen booting
# the image in qemu-system), and with it the power key does nothing.
install -d -m 0755 "$ROOT/var/lib/systemd/linger" "$ROOT/var/lib/systemd/backlight" "$ROOT/var/lib/systemd/rfkill"
# networkd keeps its state in /run; moving it to /var/lib fails on this root (seen booting in qemu-system).
ln -sfn /dev/null "$ROOT/etc/systemd/system/systemd-networkd-persistent-storage.service"
# The kernel's random seed is kept on the data partition (saving it at shutdown
# failed on the read-only root): a link, and the unit waits for that mount.
ln -sfn /var/lib/partyline-data/random-seed "$ROOT/var/lib/systemd/random-seed"
mkdir -p "$ROOT/etc/systemd/system/systemd-random-seed.service.d"
printf '[Unit]\nRequiresMountsFor=/var/lib/partyline-data\n' > "$ROOT/etc/systemd/system/systemd-random-seed.service.d/partyline.conf"
in_root "$ROOT" systemctl enable partyline.service partyline-firstboot.service systemd-networkd.service systemd-resolved.service systemd-timesyncd.service >/dev/null 2>&1
# Boot files into /boot/firmware (raspi-firmware's kernel hook), now that ROOTPART is set.
KVER=$(ls "$ROOT/lib/modules" | sort -V | tail -n 1)
mount_api "$ROOT"
in_root "$ROOT" /usr/bin/env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$KVER" "/boot/vmlinuz-$KVER" >/dev/null
unmount_all
grep -q 'root=LABEL=PLROOT' "$ROOT/boot/firmware/cmdline.txt" || die "raspi-firmware did not write /boot/firmware/cmdline.txt with root=LABEL=PLROOT"
grep -q '^dtparam=watchdog=on' "$ROOT/boot/firmware/config.txt" || die "raspi-firmware did not write /boot/firmware/config.txt with the watchdog on"

# 5. What went in: recorded in the image and beside it.
MANIFEST="$ROOT/usr/share/partyline/image-manifest"
mkdir -p "$(dirname "$MANIFEST")"
RELEASE=$(cat "$BASE_TAR.date" 2>/dev/null || echo unknown)
{
  echo "# Partyline image manifest: the inputs of this build. PARTYLINE_IMAGE_PINS=<this file> rebuilds with the same package versions."
  echo "#suite=$SUITE arch=$ARCH components=$COMPONENTS"
  echo "#mirror=$MIRROR"
  echo "#release-date=${RELEASE:-unknown}"
  echo "#firmware=$(node -p "require('$REPO/package.json').version") commit=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "#package-lock-sha256=$(sha256sum < "$WORK/package-lock.json" | cut -d' ' -f1)"
  echo "#source-date-epoch=$SOURCE_DATE_EPOCH"
  echo "#kernel=$KVER node=$(chroot "$ROOT" dpkg-query -W -f '${Version}' nodejs)"
  chroot "$ROOT" dpkg-query -W -f '${Package}=${Version}\n' | sort
} > "$MANIFEST"
rm -rf "$ROOT/var/cache/apt/archives/"*.deb "$ROOT/var/lib/apt/lists/"* "$ROOT/tmp/"* "$ROOT/root/.npm"
cp "$MANIFEST" "$OUT/partyline-arm64.manifest"
log "root file system ready: $ROOT ($(du -sh --exclude=./proc "$ROOT" | cut -f1)); manifest $OUT/partyline-arm64.manifest"
if [ "$STAGE" = rootfs ]; then
  log "done (rootfs) in $(( $(date +%s) - START )) s"
  exit 0
fi

# 6. The SD card image: MBR, FAT32 boot (256 MiB), ext4 root (read-only), ext4 data.
log "assembling the image (no loop devices: mkfs into files, dd into place)"
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
MiB=$((1024 * 1024))
BOOT_MB=256
DATA_MB=128
ROOT_USED_MB=$(du -sm --exclude=./boot/firmware "$ROOT" | cut -f1)
ROOT_MB=$(( (ROOT_USED_MB * 120 / 100 + 64 + 3) / 4 * 4 ))
uuid() { printf '%s' "$1-$SOURCE_DATE_EPOCH" | sha256sum | sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/'; }

BOOTFS="$WORK/boot.vfat"
rm -f "$BOOTFS"
mkfs.vfat -C -F 32 -n PLBOOT -i "$(printf '%08x' $(( SOURCE_DATE_EPOCH & 0xffffffff )))" "$BOOTFS" $(( BOOT_MB * 1024 )) >/dev/null
mcopy -s -m -i "$BOOTFS" "$ROOT"/boot/firmware/* ::/

mv "$ROOT/boot/firmware" "$WORK/boot-firmware" && mkdir -m 0755 "$ROOT/boot/firmware"
heavy mkfs.ext4 -q -F -L PLROOT -U "$(uuid root)" -E hash_seed="$(uuid hash)" -d "$ROOT" "$WORK/root.ext4" "${ROOT_MB}M"
rmdir "$ROOT/boot/firmware" && mv "$WORK/boot-firmware" "$ROOT/boot/firmware"

DATA="$WORK/data"
mkdir -p "$DATA/partyline" "$DATA/partyline-login" "$DATA/timesync"
PL_UID=$(chroot "$ROOT" id -u partyline); PL_GID=$(chroot "$ROOT" id -g partyline)
LG_UID=$(chroot "$ROOT" id -u partyline-login); LG_GID=$(chroot "$ROOT" id -g partyline-login)
TS_UID=$(chroot "$ROOT" id -u systemd-timesync 2>/dev/null || echo 0)
chown "$PL_UID:$PL_GID" "$DATA/partyline" && chmod 0700 "$DATA/partyline"
chown "$LG_UID:$LG_GID" "$DATA/partyline-login" && chmod 0700 "$DATA/partyline-login"
chown "$TS_UID" "$DATA/timesync"
mkfs.ext4 -q -F -L PLDATA -U "$(uuid data)" -E hash_seed="$(uuid datahash)" -d "$DATA" "$WORK/data.ext4" "${DATA_MB}M"

IMG="$OUT/partyline-arm64.img"
TOTAL_MB=$(( 4 + BOOT_MB + ROOT_MB + DATA_MB ))
rm -f "$IMG"
truncate -s "${TOTAL_MB}M" "$IMG"
sfdisk --quiet "$IMG" <<EOF
label: dos
label-id: 0x$(printf '%08x' $(( SOURCE_DATE_EPOCH & 0xffffffff )))
start=4MiB, size=${BOOT_MB}MiB, type=c, bootable
start=$(( 4 + BOOT_MB ))MiB, size=${ROOT_MB}MiB, type=83
start=$(( 4 + BOOT_MB + ROOT_MB ))MiB, size=${DATA_MB}MiB, type=83
EOF
dd if="$BOOTFS" of="$IMG" bs=1M seek=4 conv=notrunc,fsync status=none
dd if="$WORK/root.ext4" of="$IMG" bs=1M seek=$(( 4 + BOOT_MB )) conv=notrunc,fsync status=none
dd if="$WORK/data.ext4" of="$IMG" bs=1M seek=$(( 4 + BOOT_MB + ROOT_MB )) conv=notrunc,fsync status=none
(cd "$OUT" && sha256sum "$(basename "$IMG")" > "$(basename "$IMG").sha256")
rm -f "$BOOTFS" "$WORK/root.ext4" "$WORK/data.ext4"
log "image: $IMG ($TOTAL_MB MiB: boot $BOOT_MB, root $ROOT_MB (${ROOT_USED_MB} used), data $DATA_MB) in $(( $(date +%s) - START )) s"
