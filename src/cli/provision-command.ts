import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { connectAsync } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { parseProvisionedOverlay } from '../config/provisioned.js';
import { redactUrl } from '../config/redact.js';
import { validateLayers } from '../config/validate.js';
import { PartylineError, errorMessage } from '../errors.js';
import { decodeReport, deviceTopics, encodeDesired, isConfigVersion, isDeviceId } from '../provisioning/topics.js';
import type { ConfigVersion, DeviceTopics, Report } from '../provisioning/topics.js';

/**
 * `partyline provision DEVICE_ID --broker URL --file phone.yaml [--wait]`:
 * check a phone's configuration here (the same schema the phone checks it
 * with), publish it as the phone's retained desired configuration
 * `{version, config}`, and with --wait print the phone's report
 * (`config/reported`) for that version. The version defaults to a hash of
 * the configuration, so publishing the same file again changes nothing on
 * the phone.
 *
 * The broker password comes from --password-file or $PARTYLINE_MQTT_PASSWORD
 * (never the command line, where `ps` shows it). Exit codes: 0 published
 * (and with --wait: applied), 1 invalid file, rejected or rolled back,
 * 2 no report in time.
 */
export const MQTT_PASSWORD_ENV = 'PARTYLINE_MQTT_PASSWORD';

interface ProvisionOptions {
  broker: string;
  file: string;
  wait?: string | boolean;
  version?: string;
  username?: string;
  passwordFile?: string;
  ca?: string;
  prefix: string;
  json?: boolean;
}

export interface ProvisionIo {
  out: (text: string) => void;
  err: (text: string) => void;
  setExitCode: (code: number) => void;
  env: NodeJS.ProcessEnv;
}

const processIo = (): ProvisionIo => ({
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
  env: process.env,
});

/** Read and check a phone configuration file: its data, or every problem (file:line:col: path: ...). */
export async function readPhoneConfig(path: string): Promise<{ config: Record<string, unknown> } | { errors: string[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { errors: [`${path}: cannot read: ${errorMessage(err)}`] };
  }
  const source = parseProvisionedOverlay(text, path);
  const errors = [...source.issues, ...validateLayers([{ kind: 'overlay', source }]).issues];
  return errors.length > 0 ? { errors } : { config: source.data };
}

/** The default version: the first 12 hex digits of SHA-256 over the configuration's JSON. */
export function contentVersion(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
}

function formatReport(report: Report): string {
  const head = `${report.status} version ${String(report.version)}${report.at ? ` at ${report.at}` : ''}`;
  return [head, ...report.errors.map((e) => `  ${e}`)].join('\n') + '\n';
}

/** Wait for the report of `version` on the reported topic (a retained one counts: the phone may have handled it before). */
function waitForReport(client: MqttClient, topics: DeviceTopics, version: ConfigVersion, timeoutMs: number, onBad: (message: string) => void): Promise<Report | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const onMessage = (topic: string, payload: Buffer): void => {
      if (topic !== topics.reported) return;
      try {
        const report = decodeReport(payload);
        if (report?.version === version) finish(report);
      } catch (err) {
        onBad(errorMessage(err));
      }
    };
    const finish = (report: Report | undefined): void => {
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(report);
    };
    client.on('message', onMessage);
  });
}

export async function provision(deviceId: string, options: ProvisionOptions, io: ProvisionIo): Promise<number> {
  if (!isDeviceId(deviceId)) throw new PartylineError('ERR_PROVISION_ARGS', `device id ${JSON.stringify(deviceId)}: expected 1-64 of A-Z a-z 0-9 _ - (ctl status shows it as deviceId)`);
  const waitS = options.wait === undefined || options.wait === false ? 0 : options.wait === true ? 120 : Number(options.wait);
  if (!Number.isFinite(waitS) || waitS < 0) throw new PartylineError('ERR_PROVISION_ARGS', `--wait ${String(options.wait)}: expected seconds (a number >= 0)`);
  const read = await readPhoneConfig(options.file);
  if ('errors' in read) {
    io.err(`${options.file}: not published: ${read.errors.length === 1 ? '1 problem' : `${read.errors.length} problems`}\n${read.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 1;
  }
  const version: ConfigVersion = options.version === undefined ? contentVersion(read.config) : /^\d+$/.test(options.version) ? Number(options.version) : options.version;
  if (!isConfigVersion(version)) throw new PartylineError('ERR_PROVISION_ARGS', `--version ${options.version}: expected an integer or 1-64 printable characters`);
  const topics = deviceTopics(options.prefix, deviceId);
  const password = options.passwordFile !== undefined ? (await readFile(options.passwordFile, 'utf8')).split(/\r?\n/)[0] : io.env[MQTT_PASSWORD_ENV];
  const clientOptions: IClientOptions = {
    clientId: `partyline-provision-${process.pid}-${Date.now().toString(36)}`,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(password ? { password } : {}),
    ...(options.ca !== undefined ? { ca: await readFile(options.ca) } : {}),
  };
  let client: MqttClient;
  try {
    client = await connectAsync(options.broker, clientOptions);
  } catch (err) {
    throw new PartylineError('ERR_PROVISION_BROKER', `cannot connect to ${redactUrl(options.broker)}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const report = waitS > 0 ? waitForReport(client, topics, version, waitS * 1000, (message) => io.err(`ignoring a malformed report: ${message}\n`)) : undefined;
    if (waitS > 0) await client.subscribeAsync(topics.reported, { qos: 1 });
    await client.publishAsync(topics.desired, encodeDesired({ version, config: read.config }), { qos: 1, retain: true });
    if (!options.json) io.out(`published version ${String(version)} to ${topics.desired}\n`);
    if (!report) return 0;
    const answer = await report;
    if (!answer) {
      io.err(`no report for version ${String(version)} from ${deviceId} within ${waitS} s (is the phone online? ${topics.status})\n`);
      return 2;
    }
    io.out(options.json ? `${JSON.stringify(answer)}\n` : formatReport(answer));
    return answer.status === 'applied' ? 0 : 1;
  } finally {
    await client.endAsync().catch(() => undefined);
  }
}

export function registerProvisionCommand(program: Command, io: ProvisionIo = processIo()): void {
  program.command('provision')
    .description('publish a phone\'s desired configuration over MQTT (checked here first); with --wait, print the phone\'s report')
    .argument('<deviceId>', 'the phone\'s device id (ctl status shows it)')
    .requiredOption('--broker <url>', 'MQTT broker URL: mqtt://host:1883, mqtts://host:8883')
    .requiredOption('--file <file>', 'the phone\'s configuration (YAML, a partial overlay on its own file)')
    .option('--wait [seconds]', 'wait for the phone\'s report (default 120 s)')
    .option('--version <version>', 'configuration version (default: a hash of the configuration)')
    .option('--username <name>', 'MQTT user name')
    .option('--password-file <file>', `file whose first line is the MQTT password (default: $${MQTT_PASSWORD_ENV})`)
    .option('--ca <file>', 'mqtts://: PEM file of the broker\'s certificate authority')
    .option('--prefix <prefix>', 'topic prefix', 'partyline')
    .option('--json', 'print the report as JSON')
    .action(async (deviceId: string, options: ProvisionOptions) => {
      try {
        io.setExitCode(await provision(deviceId, options, io));
      } catch (err) {
        io.err(`partyline provision: ${errorMessage(err)}\n`);
        io.setExitCode(1);
      }
    });
}
