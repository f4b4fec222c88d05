/**
 * Benchmark — CloudTrail ingest: 1,000,000 CloudTrail events (one day of one account, JSON lines:
 * IAM users with AKIA keys, role sessions with ASIA keys renewed hourly through STS AssumeRole, AWS
 * service events, data events on S3/DynamoDB/SQS/Lambda, AccessDenied and other errors), read by the
 * `cloudtrail` importer and written with `importDiscovery` into an empty database, against a bare
 * pass over the same file (read lines, `JSON.parse` each, nothing else).
 *
 * Also the same events as S3 deliveries (`{"Records":[…]}` files of 5,000 records), read only,
 * against `JSON.parse` of each whole file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { openSteward } from '../src/app.js';
import { importer, type CloudTrailReadResult } from '../src/importers/cloudtrail/index.js';
import { importDiscovery } from '../src/inventory/import-discovery.js';
import { freshDb, progress, Rng, scaled, timed, type BenchContext, type Figure } from './lib/common.js';
import { TextSink } from './lib/text-sink.js';

const ACCOUNT = '210987654321';
const T0 = Date.parse('2026-03-02T00:00:00Z');
const DAY_MS = 86_400_000;
const SESSION_MS = 3_600_000;
const RECORDS_PER_S3_FILE = 5_000;
const TARGET = 100_000;

const REGIONS = ['us-east-1', 'us-east-1', 'us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1'];
const TLS = [
  { tlsVersion: 'TLSv1.3', cipherSuite: 'TLS_AES_128_GCM_SHA256' },
  { tlsVersion: 'TLSv1.2', cipherSuite: 'ECDHE-RSA-AES128-GCM-SHA256' },
];
const USER_AGENTS = [
  'aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-cloud-amd64 exe/x86_64.debian.12 prompt/off command/s3.cp',
  'aws-cli/2.17.5 Python/3.11.9 Darwin/23.5.0 exe/x86_64 prompt/off command/sts.get-caller-identity',
  'Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84',
  'aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/s3#1.53.1',
  'aws-sdk-java/2.25.31 Linux/5.10.214-202.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy',
  'aws-sdk-js/3.556.0 ua/2.0 os/linux#5.10.214-202.855.amzn2.x86_64 lang/js md/nodejs#20.12.2 api/dynamodb#3.556.0',
  'Terraform/1.8.2 (+https://www.terraform.io) terraform-provider-aws/5.46.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 api/iam#1.31.4',
  'aws-internal/3 aws-sdk-java/1.12.696 Linux/5.10.215-182.855.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402 vendor/Oracle_Corporation cfg/retry-mode/standard',
];
const CONSOLE_AGENT =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

interface Call {
  source: string;
  name: string;
  readOnly: boolean;
  data: boolean;
  /** Error code for a refused call of this kind. */
  denied: string;
  params: (rng: Rng, who: Principal) => Record<string, unknown>;
  resources?: (rng: Rng, who: Principal) => Record<string, unknown>[];
}

const bucketOf = (who: Principal) => `${who.team}-${who.env}-artifacts-${ACCOUNT}`;
const objectKey = (rng: Rng) => `releases/${2024 + rng.int(3)}/${rng.hex(8)}/build-${rng.int(5000)}.tar.gz`;

const CALLS: Call[] = [
  {
    source: 's3.amazonaws.com',
    name: 'GetObject',
    readOnly: true,
    data: true,
    denied: 'AccessDenied',
    params: (rng, w) => ({
      bucketName: bucketOf(w),
      Host: `${bucketOf(w)}.s3.us-east-1.amazonaws.com`,
      key: objectKey(rng),
    }),
    resources: (_rng, w) => [
      { type: 'AWS::S3::Object', ARN: `arn:aws:s3:::${bucketOf(w)}/releases/` },
      { accountId: ACCOUNT, type: 'AWS::S3::Bucket', ARN: `arn:aws:s3:::${bucketOf(w)}` },
    ],
  },
  {
    source: 's3.amazonaws.com',
    name: 'PutObject',
    readOnly: false,
    data: true,
    denied: 'AccessDenied',
    params: (rng, w) => ({
      bucketName: bucketOf(w),
      Host: `${bucketOf(w)}.s3.us-east-1.amazonaws.com`,
      key: objectKey(rng),
      'x-amz-server-side-encryption': 'aws:kms',
    }),
    resources: (_rng, w) => [
      { type: 'AWS::S3::Object', ARN: `arn:aws:s3:::${bucketOf(w)}/releases/` },
      { accountId: ACCOUNT, type: 'AWS::S3::Bucket', ARN: `arn:aws:s3:::${bucketOf(w)}` },
    ],
  },
  {
    source: 's3.amazonaws.com',
    name: 'ListObjects',
    readOnly: true,
    data: true,
    denied: 'AccessDenied',
    params: (_rng, w) => ({ bucketName: bucketOf(w), prefix: 'releases/', 'list-type': '2' }),
  },
  {
    source: 'dynamodb.amazonaws.com',
    name: 'GetItem',
    readOnly: true,
    data: true,
    denied: 'AccessDeniedException',
    params: (rng, w) => ({ tableName: `${w.team}-${w.env}-state`, key: { pk: { S: `job#${rng.hex(12)}` } } }),
  },
  {
    source: 'dynamodb.amazonaws.com',
    name: 'PutItem',
    readOnly: false,
    data: true,
    denied: 'AccessDeniedException',
    params: (_rng, w) => ({ tableName: `${w.team}-${w.env}-state` }),
  },
  {
    source: 'sqs.amazonaws.com',
    name: 'SendMessage',
    readOnly: false,
    data: true,
    denied: 'AccessDenied',
    params: (_rng, w) => ({
      queueUrl: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/${w.team}-${w.env}-events`,
    }),
  },
  {
    source: 'kms.amazonaws.com',
    name: 'Decrypt',
    readOnly: true,
    data: false,
    denied: 'AccessDeniedException',
    params: (_rng, w) => ({
      encryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      encryptionContext: { 'aws:s3:arn': `arn:aws:s3:::${bucketOf(w)}` },
    }),
    resources: (rng) => [
      {
        accountId: ACCOUNT,
        type: 'AWS::KMS::Key',
        ARN: `arn:aws:kms:us-east-1:${ACCOUNT}:key/${uuid(rng)}`,
      },
    ],
  },
  {
    source: 'kms.amazonaws.com',
    name: 'GenerateDataKey',
    readOnly: true,
    data: false,
    denied: 'AccessDeniedException',
    params: () => ({ keySpec: 'AES_256', keyId: 'alias/aws/s3' }),
  },
  {
    source: 'secretsmanager.amazonaws.com',
    name: 'GetSecretValue',
    readOnly: true,
    data: false,
    denied: 'AccessDeniedException',
    params: (rng, w) => ({
      secretId: `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:${w.team}/${w.env}/db-${rng.hex(6)}`,
    }),
  },
  {
    source: 'ssm.amazonaws.com',
    name: 'GetParameter',
    readOnly: true,
    data: false,
    denied: 'AccessDeniedException',
    params: (_rng, w) => ({ name: `/${w.team}/${w.env}/config`, withDecryption: true }),
  },
  {
    source: 'ec2.amazonaws.com',
    name: 'DescribeInstances',
    readOnly: true,
    data: false,
    denied: 'Client.UnauthorizedOperation',
    params: () => ({ instancesSet: {}, filterSet: {} }),
  },
  {
    source: 'ec2.amazonaws.com',
    name: 'DescribeSecurityGroups',
    readOnly: true,
    data: false,
    denied: 'Client.UnauthorizedOperation',
    params: (rng) => ({ securityGroupIdSet: { items: [{ groupId: `sg-0${rng.hex(16)}` }] } }),
  },
  {
    source: 'lambda.amazonaws.com',
    name: 'Invoke',
    readOnly: false,
    data: true,
    denied: 'AccessDeniedException',
    params: (_rng, w) => ({
      functionName: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:${w.team}-${w.env}-worker`,
      invocationType: 'Event',
    }),
  },
  {
    source: 'ecr.amazonaws.com',
    name: 'GetAuthorizationToken',
    readOnly: true,
    data: false,
    denied: 'AccessDeniedException',
    params: () => ({ registryIds: [ACCOUNT] }),
  },
  {
    source: 'logs.amazonaws.com',
    name: 'CreateLogStream',
    readOnly: false,
    data: false,
    denied: 'AccessDeniedException',
    params: (rng, w) => ({
      logGroupName: `/aws/${w.team}/${w.env}`,
      logStreamName: `${new Date(T0).toISOString().slice(0, 10)}/[$LATEST]${rng.hex(32)}`,
    }),
  },
  {
    source: 'sts.amazonaws.com',
    name: 'GetCallerIdentity',
    readOnly: true,
    data: false,
    denied: 'AccessDenied',
    params: () => ({}),
  },
  {
    source: 'iam.amazonaws.com',
    name: 'ListRoles',
    readOnly: true,
    data: false,
    denied: 'AccessDenied',
    params: () => ({ maxItems: 100 }),
  },
  {
    source: 'cloudformation.amazonaws.com',
    name: 'DescribeStacks',
    readOnly: true,
    data: false,
    denied: 'AccessDenied',
    params: (_rng, w) => ({ stackName: `${w.team}-${w.env}` }),
  },
];

const TEAMS = ['payments', 'search', 'ledger', 'growth', 'platform', 'data', 'identity', 'mobile', 'ml'];
const ENVS = ['prod', 'staging', 'dev'];
const ROLE_KINDS = [
  { service: 'lambda.amazonaws.com', suffix: 'lambda-exec', ec2: false },
  { service: 'ecs-tasks.amazonaws.com', suffix: 'task', ec2: false },
  { service: 'ec2.amazonaws.com', suffix: 'instance', ec2: true },
  { service: 'eks.amazonaws.com', suffix: 'irsa', ec2: false },
];

interface Principal {
  kind: 'user' | 'role';
  name: string;
  arn: string;
  principalId: string;
  team: string;
  env: string;
  /** Indices into CALLS this principal makes, repeated for weight. */
  calls: number[];
  ips: string[];
  agent: string;
  // users
  keys: string[];
  // roles
  assumer?: string;
  ec2?: boolean;
  session?: { key: string; name: string; created: number };
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function keyId(rng: Rng, prefix: string): string {
  let s = prefix;
  for (let i = 0; i < 16; i++) s += B32[rng.int(32)];
  return s;
}

function uuid(rng: Rng): string {
  const h = rng.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
}

const publicIp = (rng: Rng) =>
  `${[3, 18, 34, 52, 54, 99][rng.int(6)]}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`;
const privateIp = (rng: Rng) => `10.${rng.int(16)}.${rng.int(256)}.${rng.int(256)}`;
const isoSeconds = (ms: number) => new Date(ms).toISOString().slice(0, 19) + 'Z';

/** `Jun 2, 2024, 10:37:12 PM`, how CloudTrail writes an STS expiration. */
function stsTime(ms: number): string {
  const d = new Date(ms);
  const mon = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const h = d.getUTCHours();
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${mon} ${d.getUTCDate()}, ${d.getUTCFullYear()}, ${h % 12 || 12}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`;
}

function makePrincipals(rng: Rng, users: number, roles: number): Principal[] {
  const out: Principal[] = [];
  const profile = () => {
    const calls: number[] = [];
    const n = 3 + rng.int(6);
    for (let i = 0; i < n; i++) {
      const c = rng.int(CALLS.length);
      for (let w = 1 + rng.int(4); w > 0; w--) calls.push(c);
    }
    return calls;
  };
  for (let i = 0; i < users; i++) {
    const team = rng.pick(TEAMS);
    const env = rng.pick(ENVS);
    const name = i % 10 === 0 ? `${team}.dev${i}` : `svc-${team}-${env}-${i}`;
    const ips: string[] = [];
    for (let k = 1 + rng.int(3); k > 0; k--) ips.push(publicIp(rng));
    const keys = [keyId(rng, 'AKIA')];
    if (rng.next() < 0.2) keys.push(keyId(rng, 'AKIA')); // mid-rotation: both keys in use
    out.push({
      kind: 'user',
      name,
      arn: `arn:aws:iam::${ACCOUNT}:user/${i % 3 === 0 ? 'ci/' : ''}${name}`,
      principalId: keyId(rng, 'AIDA'),
      team,
      env,
      calls: profile(),
      ips,
      agent: rng.pick(USER_AGENTS),
      keys,
    });
  }
  for (let i = 0; i < roles; i++) {
    const team = rng.pick(TEAMS);
    const env = rng.pick(ENVS);
    const rk = rng.pick(ROLE_KINDS);
    const name = `${team}-${env}-${rk.suffix}-${i}`;
    const ips: string[] = [];
    for (let k = 2 + rng.int(6); k > 0; k--) ips.push(rk.ec2 ? privateIp(rng) : publicIp(rng));
    out.push({
      kind: 'role',
      name,
      arn: `arn:aws:iam::${ACCOUNT}:role/${i % 4 === 0 ? 'service-role/' : ''}${name}`,
      principalId: keyId(rng, 'AROA'),
      team,
      env,
      calls: profile(),
      ips,
      agent: rng.pick(USER_AGENTS),
      keys: [],
      assumer: rk.service,
      ec2: rk.ec2,
    });
  }
  return out;
}

/**
 * Writes `total` CloudTrail records in time order, once as JSON lines (`file`) and once as S3
 * deliveries of RECORDS_PER_S3_FILE records (`s3Dir`); returns the size of the JSON lines and the
 * number of S3 files.
 */
function writeCloudTrail(
  file: string,
  s3Dir: string,
  total: number,
  scale: number,
  rng: Rng,
): { bytes: number; s3Files: number } {
  const principals = makePrincipals(rng, scaled(2_000, scale, 20), scaled(600, scale, 10));
  const users = principals.filter((p) => p.kind === 'user');
  const roles = principals.filter((p) => p.kind === 'role');
  const out = new TextSink(file);
  fs.mkdirSync(s3Dir, { recursive: true });
  let s3: TextSink | undefined;
  let s3Files = 0;
  const step = DAY_MS / total;
  let written = 0;
  const base = (ms: number, region: string) => ({
    eventVersion: '1.09',
    eventTime: isoSeconds(ms),
    awsRegion: region,
    requestID: uuid(rng),
    eventID: uuid(rng),
  });
  const emit = (r: Record<string, unknown>) => {
    const json = JSON.stringify(r);
    out.write(json + '\n');
    if (written % RECORDS_PER_S3_FILE === 0) {
      s3?.write(']}');
      s3?.close();
      const name = `${ACCOUNT}_CloudTrail_us-east-1_${String(r.eventTime).replace(/[-:]/g, '')}_${String(s3Files++).padStart(5, '0')}.json`;
      s3 = new TextSink(path.join(s3Dir, name));
      s3.write(`{"Records":[${json}`);
    } else s3!.write(`,${json}`);
    written++;
  };
  while (written < total) {
    const ms = T0 + Math.floor(written * step);
    const region = rng.pick(REGIONS);
    const u = rng.next();
    if (u < 0.07) {
      // an AWS service acting on its own (no ARN: not attributed to an identity)
      const svc = rng.pick(['cloudtrail.amazonaws.com', 'config.amazonaws.com', 'autoscaling.amazonaws.com']);
      emit({
        ...base(ms, region),
        userIdentity: { type: 'AWSService', invokedBy: svc },
        eventSource: 'kms.amazonaws.com',
        eventName: 'GenerateDataKey',
        sourceIPAddress: svc,
        userAgent: svc,
        requestParameters: {
          keySpec: 'AES_256',
          encryptionContext: { 'aws:cloudtrail:arn': `arn:aws:cloudtrail:us-east-1:${ACCOUNT}:trail/org` },
        },
        responseElements: null,
        readOnly: true,
        eventType: 'AwsApiCall',
        managementEvent: true,
        recipientAccountId: ACCOUNT,
        sharedEventID: uuid(rng),
        eventCategory: 'Management',
      });
      continue;
    }
    if (u < 0.0701) {
      emit({
        ...base(ms, 'us-east-1'),
        userIdentity: {
          type: 'Root',
          principalId: ACCOUNT,
          arn: `arn:aws:iam::${ACCOUNT}:root`,
          accountId: ACCOUNT,
        },
        eventSource: 'signin.amazonaws.com',
        eventName: 'ConsoleLogin',
        sourceIPAddress: publicIp(rng),
        userAgent: CONSOLE_AGENT,
        requestParameters: null,
        responseElements: { ConsoleLogin: 'Success' },
        additionalEventData: {
          LoginTo: 'https://console.aws.amazon.com/console/home',
          MobileVersion: 'No',
          MFAUsed: 'Yes',
        },
        readOnly: false,
        eventType: 'AwsConsoleSignIn',
        managementEvent: true,
        recipientAccountId: ACCOUNT,
        eventCategory: 'Management',
      });
      continue;
    }
    const who = u < 0.4 ? rng.pick(users) : rng.pick(roles);
    let userIdentity: Record<string, unknown>;
    if (who.kind === 'user') {
      userIdentity = {
        type: 'IAMUser',
        principalId: who.principalId,
        arn: who.arn,
        accountId: ACCOUNT,
        accessKeyId: rng.pick(who.keys),
        userName: who.name,
      };
    } else {
      let s = who.session;
      if (!s || ms - s.created >= SESSION_MS) {
        // a new session: STS issues temporary credentials to the service that runs the role
        s = who.session = {
          key: keyId(rng, 'ASIA'),
          name: who.ec2 ? `i-0${rng.hex(16)}` : `${who.assumer!.split('.')[0]}-${rng.hex(12)}`,
          created: ms,
        };
        emit({
          ...base(ms, region),
          userIdentity: { type: 'AWSService', invokedBy: who.assumer },
          eventSource: 'sts.amazonaws.com',
          eventName: 'AssumeRole',
          sourceIPAddress: who.assumer,
          userAgent: who.assumer,
          requestParameters: { roleArn: who.arn, roleSessionName: s.name, durationSeconds: 3600 },
          responseElements: {
            credentials: {
              accessKeyId: s.key,
              sessionToken: `IQoJb3JpZ2luX2VjE${rng.hex(48)}`,
              expiration: stsTime(ms + SESSION_MS),
            },
            assumedRoleUser: {
              assumedRoleId: `${who.principalId}:${s.name}`,
              arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${who.name}/${s.name}`,
            },
          },
          readOnly: true,
          resources: [{ accountId: ACCOUNT, type: 'AWS::IAM::Role', ARN: who.arn }],
          eventType: 'AwsApiCall',
          managementEvent: true,
          recipientAccountId: ACCOUNT,
          sharedEventID: uuid(rng),
          eventCategory: 'Management',
        });
        continue;
      }
      const sessionContext: Record<string, unknown> = {
        sessionIssuer: {
          type: 'Role',
          principalId: who.principalId,
          arn: who.arn,
          accountId: ACCOUNT,
          userName: who.name,
        },
        webIdFederationData: {},
        attributes: { creationDate: isoSeconds(s.created), mfaAuthenticated: 'false' },
      };
      if (who.ec2) sessionContext.ec2RoleDelivery = '2.0';
      userIdentity = {
        type: 'AssumedRole',
        principalId: `${who.principalId}:${s.name}`,
        arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${who.name}/${s.name}`,
        accountId: ACCOUNT,
        accessKeyId: s.key,
        sessionContext,
      };
    }
    const call = CALLS[rng.pick(who.calls)]!;
    const r: Record<string, unknown> = {
      ...base(ms, region),
      userIdentity,
      eventSource: call.source,
      eventName: call.name,
      sourceIPAddress: rng.next() < 0.05 ? publicIp(rng) : rng.pick(who.ips),
      userAgent: rng.next() < 0.02 ? rng.pick(USER_AGENTS) : who.agent,
    };
    const e = rng.next();
    if (e < 0.03) {
      r.errorCode = call.denied;
      r.errorMessage = `User: ${String(userIdentity.arn)} is not authorized to perform: ${call.source.split('.')[0]}:${call.name} because no identity-based policy allows the ${call.source.split('.')[0]}:${call.name} action`;
    } else if (e < 0.04) {
      r.errorCode = 'ThrottlingException';
      r.errorMessage = 'Rate exceeded';
    }
    r.requestParameters = call.params(rng, who);
    r.responseElements = null;
    if (call.source === 's3.amazonaws.com')
      r.additionalEventData = {
        SignatureVersion: 'SigV4',
        CipherSuite: 'ECDHE-RSA-AES128-GCM-SHA256',
        bytesTransferredIn: 0,
        AuthenticationMethod: 'AuthHeader',
        'x-amz-id-2': rng.hex(40),
        bytesTransferredOut: rng.int(5_000_000),
      };
    r.readOnly = call.readOnly;
    if (call.resources) r.resources = call.resources(rng, who);
    r.eventType = 'AwsApiCall';
    r.managementEvent = !call.data;
    r.recipientAccountId = ACCOUNT;
    r.eventCategory = call.data ? 'Data' : 'Management';
    r.tlsDetails = {
      ...rng.pick(TLS),
      clientProvidedHostHeader: `${call.source.split('.')[0]}.${region}.amazonaws.com`,
    };
    emit(r);
  }
  s3?.write(']}');
  s3?.close();
  return { bytes: out.close(), s3Files };
}

/** The baseline: read the file's lines and `JSON.parse` each, nothing else. */
async function bareParse(file: string): Promise<number> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let n = 0;
  const line = (s: string) => {
    if (s.length) {
      JSON.parse(s);
      n++;
    }
  };
  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    const s = rest + decoder.write(chunk);
    let start = 0;
    let i = s.indexOf('\n');
    while (i !== -1) {
      line(s.slice(start, i));
      start = i + 1;
      i = s.indexOf('\n', start);
    }
    rest = s.slice(start);
  }
  line(rest + decoder.end());
  return n;
}

/** The baseline for S3 deliveries: `JSON.parse` of each whole file. */
async function bareParseFiles(dir: string): Promise<number> {
  let n = 0;
  for (const f of fs.readdirSync(dir).sort()) {
    const doc = JSON.parse(await fs.promises.readFile(path.join(dir, f), 'utf8')) as { Records: unknown[] };
    n += doc.Records.length;
  }
  return n;
}

export async function benchCloudTrailIngest(ctx: BenchContext): Promise<Figure[]> {
  const total = scaled(1_000_000, ctx.scale, 1_000);
  const db = await freshDb(ctx);
  const figures: Figure[] = [];
  const fig = (f: Omit<Figure, 'benchmark' | 'dialect'>) =>
    figures.push({ benchmark: 'cloudtrail ingest', dialect: ctx.dialect, ...f });
  try {
    const file = path.join(db.tmpDir, 'cloudtrail.jsonl');
    const s3Dir = path.join(db.tmpDir, 's3');
    const gen = await timed(() =>
      Promise.resolve(writeCloudTrail(file, s3Dir, total, ctx.scale, new Rng(7))),
    );
    const { bytes, s3Files } = gen.result;
    progress(
      `${ctx.dialect}: cloudtrail: ${total} events, ${(bytes / 1e6).toFixed(0)} MB of JSON lines and ${s3Files} S3 files (${(gen.ms / 1000).toFixed(1)} s)`,
    );

    const steward = await openSteward({ db: db.url, keysDir: db.keysDir, createKeys: true });
    try {
      const read = (paths: string[]) =>
        importer.read(paths, { skipInvalid: false, keys: steward.keys }) as Promise<CloudTrailReadResult>;
      const check = (r: CloudTrailReadResult) => {
        if (r.stats.records !== total)
          throw new Error(`the importer read ${r.stats.records} records, expected ${total}`);
      };

      const base = await timed(() => bareParse(file));
      if (base.result !== total) throw new Error(`bare parse saw ${base.result} lines, expected ${total}`);
      progress(`${ctx.dialect}: bare JSON.parse of the lines: ${base.ms.toFixed(0)} ms`);

      const readOnly = await timed(() => read([file]));
      check(readOnly.result);
      const stats = readOnly.result.stats;
      progress(
        `${ctx.dialect}: read only: ${readOnly.ms.toFixed(0)} ms (${stats.attributed} attributed, ${readOnly.result.batch.identities.length} identities)`,
      );

      let importMs = 0;
      const full = await timed(async () => {
        const r = await read([file]);
        check(r);
        const t0 = performance.now();
        const imported = await importDiscovery(steward, r.batch, {
          actor: 'bench',
          reason: 'cloudtrail ingest benchmark',
        });
        importMs = performance.now() - t0;
        return { r, imported };
      });
      const imported = full.result.imported;
      progress(
        `${ctx.dialect}: read + import: ${full.ms.toFixed(0)} ms (import ${importMs.toFixed(0)} ms, ${imported.events} events)`,
      );
      if (imported.identities.new !== readOnly.result.batch.identities.length)
        throw new Error(
          `imported ${imported.identities.new} identities, expected ${readOnly.result.batch.identities.length}`,
        );

      const s3Base = await timed(() => bareParseFiles(s3Dir));
      const s3Read = await timed(() => read([s3Dir]));
      check(s3Read.result);
      progress(
        `${ctx.dialect}: S3 deliveries: bare ${s3Base.ms.toFixed(0)} ms, read ${s3Read.ms.toFixed(0)} ms`,
      );

      const rate = (ms: number) => total / (ms / 1000);
      const baseRate = rate(base.ms);
      const credentials = readOnly.result.batch.identities.reduce(
        (n, d) => n + (d.credentials?.length ?? 0),
        0,
      );
      fig({
        name: `read only: ${total.toLocaleString('en-US')} events, JSON lines (${(bytes / 1e6).toFixed(0)} MB)`,
        unit: 'events/s',
        value: rate(readOnly.ms),
        baseline: { name: 'read lines + JSON.parse', value: baseRate },
        ratio: rate(readOnly.ms) / baseRate,
        target: '≥ 100,000 events/s',
        met: rate(readOnly.ms) >= TARGET,
        note: `${readOnly.result.batch.identities.length} identities, ${credentials} access keys; ${stats.attributed} events attributed, ${total - stats.attributed} not (AWS services); ${(readOnly.ms / 1000).toFixed(1)} s against ${(base.ms / 1000).toFixed(1)} s`,
      });
      fig({
        name: 'read + importDiscovery into an empty database',
        unit: 'events/s',
        value: rate(full.ms),
        baseline: { name: 'read lines + JSON.parse', value: baseRate },
        ratio: rate(full.ms) / baseRate,
        target: '≥ 100,000 events/s',
        met: rate(full.ms) >= TARGET,
        note: `${(full.ms / 1000).toFixed(1)} s, of which importDiscovery ${(importMs / 1000).toFixed(1)} s (${imported.events} ledger events)`,
      });
      fig({
        name: `read only: the same events as ${s3Files} S3 deliveries {"Records":[…]}`,
        unit: 'events/s',
        value: rate(s3Read.ms),
        baseline: { name: 'JSON.parse of each whole file', value: rate(s3Base.ms) },
        ratio: s3Base.ms / s3Read.ms,
        target: '≥ 100,000 events/s',
        met: rate(s3Read.ms) >= TARGET,
      });
    } finally {
      await steward.close();
    }
  } finally {
    await db.cleanup();
  }
  return figures;
}
