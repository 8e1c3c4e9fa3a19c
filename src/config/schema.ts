/**
 * The one configuration schema: types, defaults and descriptions of every
 * key. Files, the provisioned overlay, MQTT desired config and environment
 * variables all go through it (see load.ts). `partyline config schema`
 * prints it (see describe.ts).
 *
 * Conventions: every object is strict (unknown keys are errors), every leaf
 * has a description, and a custom error text, where one is given, is the
 * "expected ..." half of an issue; the loader appends ", got <value>".
 */
import { z } from 'zod';
import { isHostPort } from '../util/host-port.js';
import { isIpAddress, isMqttUrl, isPublicKeyText } from './formats.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const SUPERNODE_POLICIES = ['auto', 'never', 'always'] as const;
export const KEYPAD_DRIVERS = ['sim', 'hid'] as const;
export const HOOK_DRIVERS = ['sim', 'gpio'] as const;
export const LED_DRIVERS = ['sim', 'gpio'] as const;
export const AUDIO_DRIVERS = ['sim', 'alsa'] as const;
export const SAMPLE_RATES = [16000, 48000] as const;

/**
 * Dotted paths of keys holding secrets. Logging, `partyline config show`,
 * telemetry and provisioning reports redact them (redact.ts).
 */
export const SECRET_CONFIG_PATHS: ReadonlySet<string> = new Set([
  'account.password',
  'supernode.soundTest.password',
  'provisioning.mqtt.password',
  'provisioning.broker.password',
]);

// ---- leaf helpers ---------------------------------------------------------

function int(min: number, max: number) {
  const error = max === Number.MAX_SAFE_INTEGER ? `expected an integer >= ${min}` : `expected an integer ${min}..${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

function hostPort() {
  const error = 'expected "host:port"';
  return z.string({ error }).refine(isHostPort, { error }).meta({ format: 'host:port' });
}

function nonEmpty(what = 'a non-empty string') {
  return z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });
}

function path() {
  return nonEmpty('a file path').meta({ format: 'path' });
}

const digitsKey = z
  .string()
  .regex(/^[0-9]+$/, { error: 'expected a key of digits only' })
  .meta({ format: 'digits' });

const userName = z
  .string({ error: 'expected a user name' })
  .regex(/^[^\s:/@]{1,64}$/, { error: 'expected a user name (1..64 characters, no spaces, ":", "/" or "@")' })
  .meta({ format: 'user' });

const dialTarget = z
  .string({ error: 'expected a number or a user name' })
  .regex(/^[^\s:/@]{1,64}$/, { error: 'expected a number or a user name (no spaces, ":", "/" or "@")' })
  .meta({ format: 'number-or-user' });

const componentKey = z
  .string()
  .regex(/^[a-z][a-z0-9-]*$/, { error: 'expected a component name (lower case, e.g. "overlay")' })
  .meta({ format: 'component' });

const ledKey = z
  .string()
  .regex(/^[a-z][a-z0-9-]*$/, { error: 'expected an LED name (lower case, e.g. "call")' })
  .meta({ format: 'led' });

const logLevel = z.enum(LOG_LEVELS);

// ---- sections -------------------------------------------------------------

export const nodeSchema = z
  .strictObject({
    name: nonEmpty()
      .max(64, { error: 'expected at most 64 characters' })
      .optional()
      .describe('Human label for this device, shown in status, telemetry and mDNS (e.g. "reception desk").'),
    stateDir: path()
      .optional()
      .describe(
        'Directory for device keys, host cache, the chosen port, the control socket and the provisioned overlay. ' +
          'Default: $STATE_DIRECTORY (set by systemd StateDirectory=), else /var/lib/partyline when running as root, ' +
          'else $XDG_STATE_HOME/partyline (~/.local/state/partyline). A leading "~/" means the home directory; ' +
          'relative paths are relative to the working directory.',
      ),
    listen: z
      .string({ error: 'expected an IP address' })
      .refine(isIpAddress, { error: 'expected an IP address' })
      .default('0.0.0.0')
      .meta({ format: 'ip-address' })
      .describe('Address TCP and UDP sockets bind to: 0.0.0.0 for all IPv4 interfaces, :: for all IPv6.'),
    port: int(0, 65535)
      .default(0)
      .describe('TCP and UDP port of this node. 0 = pick a random port at first start and keep it in the state directory.'),
    control: path()
      .optional()
      .describe('Path of the local control socket used by `partyline ctl`. Default: <stateDir>/control.sock.'),
  })
  .describe('This device.');

export const loginServerSchema = z
  .strictObject({
    address: hostPort()
      .optional()
      .describe('Login server as "host:port". Reached directly, or through the supernode when a firewall blocks it.'),
    publicKey: z
      .string({ error: 'expected a 32-byte Ed25519 public key as 64 hex digits or base64' })
      .refine(isPublicKeyText, { error: 'expected a 32-byte Ed25519 public key as 64 hex digits or base64' })
      .meta({ format: 'ed25519-public-key' })
      .optional()
      .describe('Long-term Ed25519 public key of the login server (hex or base64): the trust anchor credentials are checked against.'),
  })
  .describe('The central login server.');

export const networkSchema = z
  .strictObject({
    name: nonEmpty()
      .default('partyline')
      .describe('Name of the phone network; nodes of different networks ignore each other (mDNS, host cache).'),
    loginServer: loginServerSchema.prefault({}),
    bootstrap: z
      .array(hostPort(), { error: 'expected a list of "host:port"' })
      .default([])
      .describe('Supernodes ("host:port") to try when the host cache is empty. Environment: comma-separated.'),
    mdns: z
      .boolean({ error: 'expected true or false' })
      .default(true)
      .describe('Find supernodes on the LAN with mDNS (_partyline._tcp) and, as a supernode, announce this one.'),
    keepAliveS: int(1, 3600).default(60).describe('Seconds between keep-alives to the supernode over TCP (a supernode drops a node silent for 2.5 intervals).'),
    hostCacheSize: int(1, 10000).default(200).describe('Maximum number of supernodes kept in the persisted host cache.'),
  })
  .describe('Joining the peer-to-peer network.');

export const accountSchema = z
  .strictObject({
    user: userName.optional().describe('User name this phone logs in as. Without it the phone waits for provisioning.'),
    password: nonEmpty('a password')
      .optional()
      .describe('Password of the user. Secret: prefer passwordFile in files kept on disk.'),
    passwordFile: path()
      .optional()
      .describe('File holding the password (first line; trailing newline ignored). Excludes password.'),
  })
  .superRefine((account, ctx) => {
    if (account.password !== undefined && account.passwordFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'expected either account.password or account.passwordFile, not both' });
    }
    if ((account.password !== undefined || account.passwordFile !== undefined) && account.user === undefined) {
      ctx.addIssue({ code: 'custom', path: ['user'], message: 'expected a user name to go with the password' });
    }
  })
  .describe('The user account this phone logs in with.');

export const supernodeSchema = z
  .strictObject({
    policy: z
      .enum(SUPERNODE_POLICIES)
      .default('auto')
      .describe('auto = promote when public, fast and idle enough; never = stay an ordinary node; always = act as supernode.'),
    maxNodes: int(1, 1_000_000).default(10000).describe('Maximum number of ordinary nodes attached to this supernode.'),
    maxLinksPerAddress: int(1, 4096).default(16).describe('Maximum simultaneous links from one IP address (abuse limit).'),
    ports: z
      .array(int(1, 65535), { error: 'expected a list of ports' })
      .default([])
      .describe('Extra TCP ports to listen on as a supernode, e.g. [443, 80] for clients behind strict firewalls.'),
    advertise: hostPort()
      .optional()
      .describe('Address ("host:port") other nodes should use to reach this supernode. Default: node.listen and the port when listen is a specific address, else the first IPv4 address of a network interface.'),
    stunAltPort: int(0, 65535)
      .default(0)
      .describe('Second UDP port for STUN change-port answers (RFC 5780, advertised in OTHER-ADDRESS), used in NAT classification. 0 = any free port.'),
    peerLinks: int(1, 64).default(8).describe('Links a supernode keeps to other supernodes (bootstrap list and gossip).'),
    indexReplicas: int(1, 20)
      .default(8)
      .describe('k of the global index: supernodes holding each user\'s records, presence and held messages (the k closest to the user\'s key); also the lookup width.'),
    attachTimeoutS: int(1, 120)
      .default(5)
      .describe('Seconds a node has, after its handshake, to present a valid credential (or open a login tunnel) before it is dropped.'),
    maxRelayedCalls: int(0, 1_000_000)
      .default(1000)
      .describe('Media relay allocations (relayed calls) this supernode carries at once; 0 = relay nothing.'),
    relayPerUserMax: int(1, 1000).default(4).describe('Media relay allocations one user may hold at once on this supernode.'),
    relayIdleS: int(1, 3600).default(30).describe('Seconds without media on either leg after which a relay allocation is freed (calls of any length are relayed while media flows).'),
    relayKbps: int(0, 1_000_000)
      .default(256)
      .describe('Cap on each relay leg\'s sending rate in kbit/s (wideband Opus with RTP/SRTP overhead needs about 40-80; the cap keeps a relay from being turned into a flood cannon); 0 = no cap.'),
    soundTest: z
      .strictObject({
        user: userName
          .optional()
          .describe('Account the sound-test service answers as (e.g. echo): it picks up and plays the caller\'s audio back after delayMs. Unset = no sound-test service. Create the account with `partyline user add`.'),
        password: nonEmpty('a password').optional().describe('Password of the sound-test account. Secret: prefer passwordFile.'),
        passwordFile: path().optional().describe('File whose first line is the sound-test account\'s password.'),
        delayMs: int(200, 5000).default(1000).describe('How long after the caller speaks the sound-test service plays it back, ms.'),
      })
      .prefault({})
      .describe('The sound-test service this supernode box runs (the first call after plugging in a phone).'),
    minUptimeS: int(0, Number.MAX_SAFE_INTEGER)
      .default(600)
      .describe('Policy auto: seconds of uptime before this node may promote itself.'),
    minBandwidthKbps: int(0, Number.MAX_SAFE_INTEGER)
      .default(1000)
      .describe('Policy auto: measured bandwidth each way (kbit/s) needed to promote.'),
    minFreeMemoryMb: int(0, Number.MAX_SAFE_INTEGER)
      .default(128)
      .describe('Policy auto: free memory (MiB) needed to promote.'),
    maxLoadPerCore: z
      .number({ error: 'expected a number 0.05..16' })
      .min(0.05, { error: 'expected a number 0.05..16' })
      .max(16, { error: 'expected a number 0.05..16' })
      .default(0.7)
      .describe('Policy auto: highest 1-minute load average per CPU core at which this node may promote (0.7 leaves a phone\'s own audio path headroom).'),
    bandwidthMaxAgeS: int(60, Number.MAX_SAFE_INTEGER)
      .default(86400)
      .describe('Policy auto: a bandwidth measurement older than this (seconds) no longer counts; the node measures again.'),
    reachbackMaxAgeS: int(60, Number.MAX_SAFE_INTEGER)
      .default(3600)
      .describe('Policy auto: a reach-back confirmation (another supernode connecting back over TCP and UDP) older than this (seconds) no longer counts.'),
    promoteAfterS: int(0, Number.MAX_SAFE_INTEGER)
      .default(300)
      .describe('Policy auto: seconds the promotion checks must pass without a break before this node becomes a supernode.'),
    demoteAfterS: int(0, Number.MAX_SAFE_INTEGER)
      .default(600)
      .describe('Policy auto: seconds the promotion checks must fail without a break before a supernode hands over and steps down.'),
    checkIntervalS: int(1, 86400)
      .default(300)
      .describe('Policy auto: seconds between promotion checks (the first comes 10 s after start, or sooner when this is shorter).'),
    port: int(0, 65535)
      .default(0)
      .describe('Policy auto: TCP and UDP port a phone that promotes itself serves other nodes on (its supernode side runs beside the phone with its own device key); 0 = the phone\'s port + 1. The reach-back probe checks this port.'),
  })
  .describe('Supernode role and promotion.');

const hidUsageKey = z
  .string()
  .regex(/^(shift\+)?(0x[0-9a-fA-F]{1,2}|[0-9]{1,3})$/, { error: 'expected a HID keyboard usage such as "0x59", "89" or "shift+0x20"' })
  .refine((text) => { const n = Number(text.replace(/^shift\+/, '')); return n >= 4 && n <= 0xff; }, { error: 'expected a HID keyboard usage 0x04..0xff' })
  .meta({ format: 'hid-usage' });

const keypadKey = z
  .string({ error: 'expected a key name' })
  .regex(/^(?:[0-9*#]|[a-z][a-z0-9-]{0,31})$/, { error: 'expected a key: 0-9, *, #, a name such as redial or volume-up, or none' })
  .meta({ format: 'key' });

export const keypadSchema = z.strictObject({
  driver: z.enum(KEYPAD_DRIVERS).default('sim').describe('Keypad driver: sim (control API / tests) or hid (USB HID keypad).'),
  device: z
    .string({ error: 'expected a hidraw path (/dev/hidraw0) or "vendorId:productId" in hex' })
    .regex(/^(\/.+|[0-9a-fA-F]{1,4}:[0-9a-fA-F]{1,4})$/, { error: 'expected a hidraw path (/dev/hidraw0) or "vendorId:productId" in hex' })
    .optional()
    .describe('hid driver: hidraw path or "vendorId:productId" (hex, e.g. 05a4:9759); default: the first keyboard-like HID device.'),
  keymap: z
    .record(hidUsageKey, keypadKey, { error: 'expected a map of HID usage to key name' })
    .default({})
    .describe('hid driver: changes to the default keymap, HID keyboard usage ("0x59", decimal "89", or "shift+0x20" with Shift held) to a key (0-9, *, #, redial, hold, mute, volume-up, volume-down, speaker, conference, or another name); "none" unmaps. See hal/README.md for the defaults.'),
});

export const hookSchema = z.strictObject({
  driver: z.enum(HOOK_DRIVERS).default('sim').describe('Hook switch driver: sim or gpio.'),
  pin: int(0, 1023).default(17).describe('gpio driver: GPIO line (BCM numbering) of the hook switch.'),
  activeLow: z
    .boolean({ error: 'expected true or false' })
    .default(true)
    .describe('gpio driver: true when the line reads 0 with the handset lifted (off hook).'),
  debounceMs: int(0, 1000).default(30).describe('gpio driver: debounce time of the hook switch in milliseconds.'),
});

export const ledsSchema = z.strictObject({
  driver: z.enum(LED_DRIVERS).default('sim').describe('LED driver: sim or gpio.'),
  pins: z
    .record(ledKey, int(0, 1023), { error: 'expected a map of LED name to GPIO line' })
    .default({})
    .describe('gpio driver: LED name to GPIO line (BCM numbering); the phone drives power, line, message and mute, e.g. {power: 22, line: 23, message: 24, mute: 25}.'),
});

export const audioSchema = z.strictObject({
  driver: z.enum(AUDIO_DRIVERS).default('sim').describe('Audio driver: sim (WAV files) or alsa (sound card).'),
  input: path().optional().describe('sim driver: WAV file played as the microphone (16-bit mono); silence when unset.'),
  output: path().optional().describe('sim driver: WAV file the speaker is recorded to; discarded when unset.'),
  device: nonEmpty().default('default').describe('alsa driver: ALSA device name (e.g. default, plughw:1,0).'),
  sampleRate: z
    .literal(SAMPLE_RATES, { error: 'expected 16000 or 48000' })
    .default(16000)
    .describe('Sample rate of the audio device in Hz: 16000 (wideband) or 48000.'),
});

export const ringerSchema = z.strictObject({
  driver: z.enum(['sim', 'alsa'], { error: 'expected sim or alsa' }).default('sim').describe('Ringer driver: sim (state in ctl status) or alsa (the ring cadence on a loudspeaker).'),
  device: nonEmpty().default('default').describe('alsa driver: ALSA device of the loudspeaker the phone rings on.'),
});

export const halSchema = z
  .strictObject({
    keypad: keypadSchema.prefault({}).describe('Keypad.'),
    hook: hookSchema.prefault({}).describe('Hook switch.'),
    leds: ledsSchema.prefault({}).describe('LEDs.'),
    audio: audioSchema.prefault({}).describe('Handset audio.'),
    ringer: ringerSchema.prefault({}).describe('Ringer.'),
  })
  .describe('Hardware drivers, chosen by name; sim is the simulated twin of each.');

export const phoneSchema = z
  .strictObject({
    extensions: z
      .record(digitsKey, userName, { error: 'expected a map of extension number to user name' })
      .default({})
      .describe('Dial plan: extension number (digits) to user name, e.g. {"100": "alice"}.'),
    speedDials: z
      .record(digitsKey, dialTarget, { error: 'expected a map of digits to a number or user name' })
      .default({})
      .describe('Speed dials: key digits to an extension number or a user name.'),
    interDigitTimeoutMs: int(500, 60000)
      .default(4000)
      .describe('Dialling ends this many milliseconds after the last digit.'),
    toneCountry: z
      .enum(['us', 'eu', 'uk'], { error: 'expected us, eu or uk' })
      .default('eu')
      .describe('Call-progress tones and ring cadence: us (350+440 Hz dial tone), eu (425 Hz, ITU-T E.180 / CEPT) or uk.'),
  })
  .describe('The phone application.');

export const callsSchema = z
  .strictObject({
    ringTimeoutS: int(5, 600).default(30).describe('Seconds an outgoing call rings before it ends as not answered (a missed call at the callee).'),
    bitrate: int(6000, 510000)
      .default(12000)
      .describe('Opus target bitrate in bit/s for what this phone sends (hal.audio.sampleRate sets wideband 16 kHz or fullband 48 kHz).'),
    dtx: z
      .boolean({ error: 'expected true or false' })
      .default(true)
      .describe('Opus discontinuous transmission: in silence send a packet every 400 ms instead of every 20 ms (fewer bytes; NAT bindings and path consent still stay open; a held call sends every 20 ms regardless).'),
    srtpProfile: z
      .enum(['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM', 'AEAD_AES_256_GCM'])
      .default('AES_CM_128_HMAC_SHA1_80')
      .describe('SRTP protection profile offered in calls this phone places (RFC 3711 / RFC 7714); the callee uses the caller\'s.'),
    autoAnswer: z.boolean({ error: 'expected true or false' }).default(false).describe('Answer incoming calls by themselves (intercom, tests).'),
  })
  .describe('Calls.');

export const loginServerServiceSchema = z
  .strictObject({
    enabled: z.boolean({ error: 'expected true or false' }).default(false).describe('Run the login server inside this process (the supernode box). Accounts: partyline user add NAME --data <dataDir>.'),
    dataDir: path().optional().describe('Login server data directory (accounts.db, login-key.json). Default: <node.stateDir>/login.'),
    listen: hostPort().default('0.0.0.0:5061').describe('TCP address the login server accepts Noise links on.'),
    credentialHours: z
      .number({ error: 'expected a number of hours 0.1..168' })
      .min(0.1, { error: 'expected a number of hours 0.1..168' })
      .max(168, { error: 'expected a number of hours 0.1..168' })
      .default(8)
      .describe('How long a credential the login server signs is valid, in hours.'),
  })
  .describe('The login server run by this process (supernode box). When enabled and network.loginServer is unset, the node uses it: its address and key.');

export const mqttSchema = z
  .strictObject({
    url: z
      .string({ error: 'expected an mqtt://, mqtts://, ws:// or wss:// URL' })
      .refine(isMqttUrl, { error: 'expected an mqtt://, mqtts://, ws:// or wss:// URL' })
      .meta({ format: 'url' })
      .optional()
      .describe('MQTT broker URL (mqtt://, mqtts://, ws://, wss://). Unset = a broker found on the LAN by mDNS (_mqtt._tcp) when provisioning.discover and network.mdns are on, else no provisioning over MQTT.'),
    username: nonEmpty().optional().describe('MQTT user name (with a Mosquitto ACL, one per phone: it confines the phone to its own topics).'),
    password: nonEmpty('a password').optional().describe('MQTT password. Secret.'),
    caFile: path()
      .optional()
      .describe('mqtts:// and wss://: PEM file of the certificate authority the broker\'s certificate must chain to (default: the system\'s CAs).'),
    topicPrefix: z
      .string({ error: 'expected an MQTT topic prefix without wildcards' })
      .regex(/^[^#+/](?:[^#+]*[^#+/])?$/, { error: 'expected an MQTT topic prefix without wildcards or leading/trailing "/"' })
      .default('partyline')
      .describe('Topics are <topicPrefix>/<deviceId>/...'),
  })
  .describe('MQTT provisioning client.');

export const brokerSchema = z
  .strictObject({
    enabled: z
      .boolean({ error: 'expected true or false' })
      .default(false)
      .describe('Run an embedded MQTT broker (aedes) in this process, for a LAN with no broker: meant for a supernode box. A real broker (Mosquitto) is recommended.'),
    listen: z
      .string({ error: 'expected an IP address' })
      .refine(isIpAddress, { error: 'expected an IP address' })
      .default('0.0.0.0')
      .meta({ format: 'ip-address' })
      .describe('Address the embedded broker listens on.'),
    port: int(1, 65535).default(1883).describe('TCP port of the embedded broker (plain MQTT).'),
    username: nonEmpty().optional().describe('When set, clients of the embedded broker must log in with this user name and password.'),
    password: nonEmpty('a password').optional().describe('Password clients of the embedded broker log in with. Secret.'),
  })
  .superRefine((broker, ctx) => {
    if ((broker.username === undefined) !== (broker.password === undefined)) {
      ctx.addIssue({ code: 'custom', path: [broker.username === undefined ? 'username' : 'password'], message: 'expected both username and password, or neither' });
    }
  })
  .describe('Embedded MQTT broker (optional).');

export const provisioningSchema = z
  .strictObject({
    mqtt: mqttSchema.prefault({}),
    discover: z
      .boolean({ error: 'expected true or false' })
      .default(true)
      .describe('With provisioning.mqtt.url unset and network.mdns on: use an MQTT broker announced on the LAN by mDNS (_mqtt._tcp). Anyone on the LAN could announce one: set url (with TLS and an ACL) in production.'),
    loginTimeoutS: int(2, 3600)
      .default(60)
      .describe('After applying a provisioned configuration with an account, seconds the phone has to log in before it returns to the last known good configuration (reported as rolled-back).'),
    telemetryS: int(0, 86400).default(60).describe('Seconds between telemetry messages (CPU, memory, temperature, uptime, role, supernode, call quality); 0 = none.'),
    broker: brokerSchema.prefault({}),
  })
  .describe('Provisioning and telemetry over MQTT.');

export const logSchema = z
  .strictObject({
    level: logLevel.default('info').describe('Log level: fatal, error, warn, info, debug, trace or silent.'),
    levels: z
      .record(componentKey, logLevel, { error: 'expected a map of component name to log level' })
      .default({})
      .describe('Per-component log levels overriding level, e.g. {"overlay": "debug"}. Environment: overlay=debug,nat=trace.'),
  })
  .describe('Logging (JSON lines on stdout).');

export const configSchema = z.strictObject({
  node: nodeSchema.prefault({}),
  network: networkSchema.prefault({}),
  account: accountSchema.prefault({}),
  supernode: supernodeSchema.prefault({}),
  hal: halSchema.prefault({}),
  phone: phoneSchema.prefault({}),
  calls: callsSchema.prefault({}),
  provisioning: provisioningSchema.prefault({}),
  loginServer: loginServerServiceSchema.prefault({}),
  log: logSchema.prefault({}),
});

// ---- types ----------------------------------------------------------------

/** What a file, overlay or provisioning payload may hold: every key optional. */
export type ConfigInput = z.input<typeof configSchema>;
/** The schema's output before paths are resolved (stateDir, control may be unset). */
export type ParsedConfig = z.output<typeof configSchema>;

/** node.*, with stateDir and control resolved to absolute paths by the loader. */
export type NodeConfig = Omit<ParsedConfig['node'], 'stateDir' | 'control'> & { stateDir: string; control: string };
export type NetworkConfig = ParsedConfig['network'];
export type LoginServerConfig = NetworkConfig['loginServer'];
export type AccountConfig = ParsedConfig['account'];
export type SupernodeConfig = ParsedConfig['supernode'];
export type SupernodePolicy = SupernodeConfig['policy'];
export type HalConfig = ParsedConfig['hal'];
export type KeypadConfig = HalConfig['keypad'];
export type HookConfig = HalConfig['hook'];
export type LedsConfig = HalConfig['leds'];
export type AudioConfig = HalConfig['audio'];
export type PhoneConfig = ParsedConfig['phone'];
export type CallsConfig = ParsedConfig['calls'];
export type ProvisioningConfig = ParsedConfig['provisioning'];
export type MqttConfig = ProvisioningConfig['mqtt'];
export type LogConfig = ParsedConfig['log'];
export type LogLevel = LogConfig['level'];

/** The fully defaulted and resolved configuration handed to components. */
export type Config = Omit<ParsedConfig, 'node'> & { node: NodeConfig };
