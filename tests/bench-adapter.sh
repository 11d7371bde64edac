# Adapter for tests/bench.sh: the shared one (../shared/bench/backup-adapter.sh,
# read-only, whose `backup` column is an unencrypted repository), plus a
# `backupenc` column: the same commands on a repository made by
# `backup init --encrypt`, so that `make bench` shows what encryption costs.
# The passphrase is in REPO.pw (BACKUP_PASSWORD_FILE); the key is wrapped
# with the default scrypt parameters, so every command pays one real key
# opening (about 0.4 s, docs/PERFORMANCE.md), as a user's would.
. "$SHARED_ADAPTER"

backupenc() { "$BACKUP_BIN" "$@"; }	# compare.sh looks the tool up with command -v
backupenc_version()  { echo "$("$BACKUP_BIN" --version 2>&1 | head -1) (encrypted)"; }
backupenc_settings() { echo "backup init --encrypt (AES-256-GCM, scrypt N=2^16); otherwise as backup"; }
backupenc_init() {
	rm -rf "$1.machines" "$1.restored" "$1.conf" "$1.pw"
	mkdir -p "$1.machines" "$1.restored"
	printf 'bench passphrase\n' >"$1.pw"
	printf '[repository]\n\tpath = %s\n[machines]\n\tdir = %s\n\troot = %s\n' "$1" "$1.machines" "$1.restored" >"$1.conf"
	BACKUP_PASSWORD_FILE="$1.pw" BACKUP_CONFIG="$1.conf" "$BACKUP_BIN" init --encrypt
}
backupenc_backup() {
	printf '[machine]\n\tplan = 100G\n[disk "root"]\n\tsource = %s\n\tsize = 50G\n\tfilesystem = ext4\n' "$2" >"$1.machines/bench.conf"
	BACKUP_CONFIG="$1.conf" "$BACKUP_BIN" enable bench >/dev/null 2>&1
	BACKUP_PASSWORD_FILE="$1.pw" BACKUP_CONFIG="$1.conf" "$BACKUP_BIN" run bench
}
backupenc_restore() {
	BACKUP_PASSWORD_FILE="$1.pw" BACKUP_CONFIG="$1.conf" "$BACKUP_BIN" restore bench --new "r$3" &&
		mv "$(git config -f "$1.machines/r$3.conf" --get disk.root.source)" "$2"
}
# backupenckey: an extra column, never in place of backupenc. The same
# encrypted repository opened the way an unattended timer can open it,
# with the master key exported once after init (`backup key export`,
# REPO.key) and given by --key-file: no scrypt per command, so the
# difference to backupenc is what the passphrase's key opening costs.
backupenckey() { "$BACKUP_BIN" "$@"; }
backupenckey_version()  { echo "$("$BACKUP_BIN" --version 2>&1 | head -1) (encrypted, --key-file)"; }
backupenckey_settings() { echo "as backupenc, every command opened with --key-file (the exported master key: no scrypt)"; }
backupenckey_init() {
	rm -f "$1.key"
	backupenc_init "$1" &&
		BACKUP_PASSWORD_FILE="$1.pw" BACKUP_CONFIG="$1.conf" "$BACKUP_BIN" -q key export >"$1.key" 2>/dev/null
}
backupenckey_backup() {
	printf '[machine]\n\tplan = 100G\n[disk "root"]\n\tsource = %s\n\tsize = 50G\n\tfilesystem = ext4\n' "$2" >"$1.machines/bench.conf"
	BACKUP_CONFIG="$1.conf" "$BACKUP_BIN" enable bench >/dev/null 2>&1
	BACKUP_CONFIG="$1.conf" "$BACKUP_BIN" --key-file "$1.key" run bench
}
backupenckey_restore() {
	BACKUP_CONFIG="$1.conf" "$BACKUP_BIN" --key-file "$1.key" restore bench --new "r$3" &&
		mv "$(git config -f "$1.machines/r$3.conf" --get disk.root.source)" "$2"
}
ADAPTER_FUNCS="$ADAPTER_FUNCS backupenc backupenc_init backupenc_backup backupenc_restore"
ADAPTER_FUNCS="$ADAPTER_FUNCS backupenckey backupenckey_init backupenckey_backup backupenckey_restore"
