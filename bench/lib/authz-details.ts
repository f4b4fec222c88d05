/**
 * A large `aws iam get-account-authorization-details` export, written as the AWS CLI writes it
 * (4-space indented JSON; UserDetailList, GroupDetailList, RoleDetailList, Policies), streamed to
 * disk: users in groups with attached and inline policies, tags and permissions boundaries; roles
 * with trust policies (AWS services, EKS and GitHub OIDC, SSO, vendors with an external id, other
 * roles), instance profiles, last use, attached and inline policies; service-linked roles; the AWS
 * managed policies in use (ReadOnlyAccess with its hundreds of actions among them) and customer
 * managed policies with several versions.
 */
import { TextSink } from './text-sink.js';
import type { Rng } from './common.js';

export const AUTHZ_ACCOUNT = '123456789012';
const ACCOUNT = AUTHZ_ACCOUNT;
const VENDOR_ACCOUNTS = ['464622532012', '754135023419', '222233334444', '888877776666'];
const TEAMS = [
  'payments',
  'ledger',
  'identity',
  'search',
  'checkout',
  'data',
  'platform',
  'security',
  'mobile',
  'growth',
  'billing',
  'ml',
];
const ENVS = ['prod', 'staging', 'dev'];
const REGIONS = ['us-east-1', 'us-east-1', 'us-west-2', 'eu-west-1'];

/** Real service prefixes, for the action lists of the broad AWS managed policies. */
const SERVICES = (
  'a4b access-analyzer account acm acm-pca airflow amplify apigateway application-autoscaling appmesh ' +
  'apprunner appstream appsync athena auditmanager autoscaling backup batch bedrock budgets ce ' +
  'cloud9 clouddirectory cloudformation cloudfront cloudhsm cloudsearch cloudtrail cloudwatch ' +
  'codeartifact codebuild codecommit codedeploy codeguru-reviewer codepipeline codestar ' +
  'codestar-connections cognito-identity cognito-idp comprehend config connect databrew dataexchange ' +
  'datapipeline datasync dax detective devicefarm directconnect dms docdb-elastic ds dynamodb ebs ec2 ' +
  'ecr ecr-public ecs eks elasticache elasticbeanstalk elasticfilesystem elasticloadbalancing ' +
  'elasticmapreduce elastictranscoder emr-containers es events evidently firehose fis fms forecast ' +
  'frauddetector fsx gamelift glacier globalaccelerator glue grafana greengrass groundstation ' +
  'guardduty health iam identitystore imagebuilder inspector inspector2 iot iotanalytics iotevents ' +
  'iotsitewise iotwireless ivs kafka kendra kinesis kinesisanalytics kinesisvideo kms lakeformation ' +
  'lambda lex license-manager lightsail logs lookoutvision m2 macie2 mediaconnect mediaconvert ' +
  'medialive mediapackage mediastore memorydb mgn mobiletargeting mq network-firewall networkmanager ' +
  'oam organizations outposts personalize pi pipes polly pricing proton qldb quicksight ram rds ' +
  'redshift redshift-serverless rekognition resiliencehub resource-explorer-2 resource-groups ' +
  'robomaker route53 route53domains route53resolver rum s3 sagemaker savingsplans scheduler schemas ' +
  'sdb secretsmanager securityhub serverlessrepo servicecatalog servicediscovery servicequotas ses ' +
  'shield signer sns sqs ssm ssm-incidents sso states storagegateway sts support swf synthetics ' +
  'tag textract timestream transcribe transfer translate trustedadvisor waf waf-regional wafv2 ' +
  'wellarchitected workmail workspaces xray'
).split(' ');

const ACTIONS = {
  s3rw: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:GetObjectVersion', 's3:GetObjectTagging'],
  s3list: ['s3:ListBucket', 's3:GetBucketLocation'],
  dynamo: [
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:Query',
    'dynamodb:Scan',
    'dynamodb:BatchGetItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:ConditionCheckItem',
  ],
  sqs: [
    'sqs:SendMessage',
    'sqs:ReceiveMessage',
    'sqs:DeleteMessage',
    'sqs:GetQueueAttributes',
    'sqs:ChangeMessageVisibility',
  ],
  secrets: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
  ecrPush: [
    'ecr:BatchCheckLayerAvailability',
    'ecr:CompleteLayerUpload',
    'ecr:InitiateLayerUpload',
    'ecr:PutImage',
    'ecr:UploadLayerPart',
    'ecr:BatchGetImage',
  ],
  deploy: [
    'cloudformation:CreateChangeSet',
    'cloudformation:DescribeChangeSet',
    'cloudformation:ExecuteChangeSet',
    'cloudformation:DescribeStacks',
    'cloudformation:GetTemplate',
  ],
  lambdaDeploy: [
    'lambda:UpdateFunctionCode',
    'lambda:UpdateFunctionConfiguration',
    'lambda:PublishVersion',
    'lambda:GetFunction',
  ],
};

type Doc = { Version: string; Statement: Record<string, unknown>[] };

interface ManagedPolicy {
  name: string;
  arn: string;
  path: string;
  id: string;
  versions: Doc[];
  created: string;
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function awsId(rng: Rng, prefix: string): string {
  let s = prefix;
  for (let i = 0; i < 17; i++) s += B32[rng.int(32)];
  return s;
}

function awsTime(rng: Rng, fromYear: number): string {
  const ms = Date.UTC(fromYear, 0, 1) + rng.int(4 * 365 * 86_400) * 1000;
  return new Date(ms).toISOString().slice(0, 19) + '+00:00';
}

const doc = (...statements: Record<string, unknown>[]): Doc => ({
  Version: '2012-10-17',
  Statement: statements,
});
const allow = (
  action: string | string[],
  resource: string | string[],
  extra: Record<string, unknown> = {},
) => ({
  Effect: 'Allow',
  Action: action,
  Resource: resource,
  ...extra,
});

/** The AWS managed policies this estate attaches (the export lists those in use). */
function awsManagedPolicies(rng: Rng): Map<string, ManagedPolicy> {
  const readOnly: string[] = [];
  const viewOnly: string[] = [];
  for (const s of SERVICES) {
    for (const verb of ['Describe*', 'Get*', 'List*']) readOnly.push(`${s}:${verb}`);
    if (rng.next() < 0.3) readOnly.push(`${s}:BatchGet*`);
    if (rng.next() < 0.2) readOnly.push(`${s}:Search*`);
    viewOnly.push(`${s}:List*`);
    if (rng.next() < 0.5) viewOnly.push(`${s}:Describe*`);
  }
  const defs: [string, string, Doc][] = [
    ['AdministratorAccess', '/', doc(allow('*', '*'))],
    ['ReadOnlyAccess', '/', doc(allow(readOnly.sort(), '*'))],
    ['job-function/ViewOnlyAccess', '/', doc(allow(viewOnly.sort(), '*'))],
    ['SecurityAudit', '/', doc(allow(readOnly.filter((_, i) => i % 3 !== 1).sort(), '*'))],
    [
      'PowerUserAccess',
      '/',
      doc(
        { Effect: 'Allow', NotAction: ['iam:*', 'organizations:*', 'account:*'], Resource: '*' },
        allow(
          [
            'account:GetAccountInformation',
            'account:GetPrimaryEmail',
            'account:ListRegions',
            'iam:CreateServiceLinkedRole',
            'iam:DeleteServiceLinkedRole',
            'iam:ListRoles',
            'organizations:DescribeOrganization',
          ],
          '*',
        ),
      ),
    ],
    ['AmazonS3FullAccess', '/', doc(allow(['s3:*', 's3-object-lambda:*'], '*'))],
    [
      'AmazonS3ReadOnlyAccess',
      '/',
      doc(
        allow(
          ['s3:Get*', 's3:List*', 's3:Describe*', 's3-object-lambda:Get*', 's3-object-lambda:List*'],
          '*',
        ),
      ),
    ],
    [
      'service-role/AWSLambdaBasicExecutionRole',
      '/service-role/',
      doc(allow(['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], '*')),
    ],
    [
      'service-role/AWSLambdaVPCAccessExecutionRole',
      '/service-role/',
      doc(
        allow(
          [
            'logs:CreateLogGroup',
            'logs:CreateLogStream',
            'logs:PutLogEvents',
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          '*',
        ),
      ),
    ],
    [
      'service-role/AmazonECSTaskExecutionRolePolicy',
      '/service-role/',
      doc(
        allow(
          [
            'ecr:GetAuthorizationToken',
            'ecr:BatchCheckLayerAvailability',
            'ecr:GetDownloadUrlForLayer',
            'ecr:BatchGetImage',
            'logs:CreateLogStream',
            'logs:PutLogEvents',
          ],
          '*',
        ),
      ),
    ],
    [
      'AmazonSSMManagedInstanceCore',
      '/',
      doc(
        allow(
          [
            'ssm:DescribeAssociation',
            'ssm:GetDeployablePatchSnapshotForInstance',
            'ssm:GetDocument',
            'ssm:DescribeDocument',
            'ssm:GetManifest',
            'ssm:GetParameter',
            'ssm:GetParameters',
            'ssm:ListAssociations',
            'ssm:ListInstanceAssociations',
            'ssm:PutInventory',
            'ssm:PutComplianceItems',
            'ssm:PutConfigurePackageResult',
            'ssm:UpdateAssociationStatus',
            'ssm:UpdateInstanceAssociationStatus',
            'ssm:UpdateInstanceInformation',
          ],
          '*',
        ),
        allow(
          [
            'ssmmessages:CreateControlChannel',
            'ssmmessages:CreateDataChannel',
            'ssmmessages:OpenControlChannel',
            'ssmmessages:OpenDataChannel',
          ],
          '*',
        ),
        allow(
          [
            'ec2messages:AcknowledgeMessage',
            'ec2messages:DeleteMessage',
            'ec2messages:FailMessage',
            'ec2messages:GetEndpoint',
            'ec2messages:GetMessages',
            'ec2messages:SendReply',
          ],
          '*',
        ),
      ),
    ],
    [
      'CloudWatchAgentServerPolicy',
      '/',
      doc(
        allow(
          [
            'cloudwatch:PutMetricData',
            'ec2:DescribeVolumes',
            'ec2:DescribeTags',
            'logs:PutLogEvents',
            'logs:DescribeLogStreams',
            'logs:DescribeLogGroups',
            'logs:CreateLogStream',
            'logs:CreateLogGroup',
          ],
          '*',
        ),
        allow('ssm:GetParameter', 'arn:aws:ssm:*:*:parameter/AmazonCloudWatch-*'),
      ),
    ],
    [
      'aws-service-role/AutoScalingServiceRolePolicy',
      '/aws-service-role/',
      doc(
        allow(
          [
            'ec2:AttachClassicLinkVpc',
            'ec2:CancelSpotInstanceRequests',
            'ec2:CreateFleet',
            'ec2:CreateTags',
            'ec2:DeleteTags',
            'ec2:Describe*',
            'ec2:DetachClassicLinkVpc',
            'ec2:ModifyInstanceAttribute',
            'ec2:RequestSpotInstances',
            'ec2:RunInstances',
            'ec2:StartInstances',
            'ec2:StopInstances',
            'ec2:TerminateInstances',
          ],
          '*',
        ),
        allow('iam:PassRole', '*', {
          Condition: { StringLike: { 'iam:PassedToService': 'ec2.amazonaws.com*' } },
        }),
      ),
    ],
  ];
  const out = new Map<string, ManagedPolicy>();
  for (const [name, path, d] of defs) {
    const arn = `arn:aws:iam::aws:policy/${name}`;
    out.set(name.split('/').pop()!, {
      name: name.split('/').pop()!,
      arn,
      path: path === '/' && name.includes('/') ? `/${name.split('/')[0]}/` : path,
      id: awsId(rng, 'ANPA'),
      versions: [d],
      created: awsTime(rng, 2015),
    });
  }
  return out;
}

/** One grant of the kind a team writes: buckets, tables, queues, secrets, deploys, image pushes. */
function customStatements(rng: Rng, team: string, env: string, n: number): Record<string, unknown>[] {
  const res = `${team}-${env}-${rng.hex(4)}`;
  switch (rng.int(7)) {
    case 0:
      return [
        allow(ACTIONS.s3rw.slice(0, 2 + (n % 4)), [`arn:aws:s3:::${res}/*`]),
        allow(ACTIONS.s3list, `arn:aws:s3:::${res}`),
      ];
    case 1:
      return [
        allow(ACTIONS.dynamo.slice(0, 3 + (n % 7)), [
          `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/${res}`,
          `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/${res}/index/*`,
        ]),
      ];
    case 2:
      return [allow(ACTIONS.sqs, `arn:aws:sqs:us-east-1:${ACCOUNT}:${res}`)];
    case 3:
      return [
        allow(ACTIONS.secrets, `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:${team}/${env}/*`),
        allow(
          'kms:Decrypt',
          `arn:aws:kms:us-east-1:${ACCOUNT}:key/${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-${rng.hex(4)}-${rng.hex(12)}`,
          {
            Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com' } },
          },
        ),
      ];
    case 4:
      return [
        allow(ACTIONS.deploy, `arn:aws:cloudformation:us-east-1:${ACCOUNT}:stack/${team}-${env}-*/*`),
        allow('iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/${team}-${env}-*`, {
          Condition: { StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' } },
        }),
        allow(ACTIONS.lambdaDeploy, `arn:aws:lambda:us-east-1:${ACCOUNT}:function:${team}-${env}-*`),
      ];
    case 5:
      return [
        allow('ecr:GetAuthorizationToken', '*'),
        allow(ACTIONS.ecrPush, `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${team}/*`),
      ];
    default:
      return [
        allow(['s3:GetObject', 's3:ListBucket'], [`arn:aws:s3:::${res}`, `arn:aws:s3:::${res}/*`]),
        { Effect: 'Deny', Action: ['s3:DeleteBucket', 's3:PutBucketPolicy'], Resource: '*' },
      ];
  }
}

function customerPolicies(rng: Rng, count: number): ManagedPolicy[] {
  const out: ManagedPolicy[] = [];
  for (let i = 0; i < count; i++) {
    const team = rng.pick(TEAMS);
    const env = rng.pick(ENVS);
    const name = `${team}-${env}-${['access', 'runtime', 'deploy', 'data', 'ci'][i % 5]}-${i}`;
    const statements = customStatements(rng, team, env, i);
    if (rng.next() < 0.4) statements.push(...customStatements(rng, team, env, i + 1));
    const versions: Doc[] = [doc(...statements)];
    // older versions: the policy grew over time (the export lists them all; the default is the newest)
    for (let v = rng.int(3); v > 0; v--)
      versions.push(doc(...statements.slice(0, Math.max(1, statements.length - v))));
    out.push({
      name,
      arn: `arn:aws:iam::${ACCOUNT}:policy/${name}`,
      path: '/',
      id: awsId(rng, 'ANPA'),
      versions,
      created: awsTime(rng, 2019),
    });
  }
  return out;
}

interface GroupSpec {
  name: string;
  json: Record<string, unknown>;
}

const attachment = (p: ManagedPolicy) => ({ PolicyName: p.name, PolicyArn: p.arn });

function tags(rng: Rng, team: string, env: string): { Key: string; Value: string }[] {
  const t = [
    { Key: 'team', Value: team },
    { Key: 'env', Value: env },
  ];
  if (rng.next() < 0.6) t.push({ Key: 'owner', Value: `${team}-oncall@example.com` });
  if (rng.next() < 0.3) t.push({ Key: 'cost-center', Value: `cc-${1000 + rng.int(9000)}` });
  if (rng.next() < 0.2) t.push({ Key: 'managed-by', Value: 'terraform' });
  return t;
}

/** 4-space indented like the AWS CLI, at the depth of a list element (8 spaces). */
const element = (v: unknown) => '        ' + JSON.stringify(v, null, 4).replace(/\n/g, '\n        ');

export interface AuthzSummary {
  bytes: number;
  users: number;
  roles: number;
  groups: number;
  policies: number;
}

/** Writes the export to `file` with `identities` users and roles (25 % users). */
export function writeAuthzDetails(file: string, identities: number, scale: number, rng: Rng): AuthzSummary {
  const aws = awsManagedPolicies(rng);
  const custom = customerPolicies(rng, Math.max(20, Math.round(5_000 * Math.min(1, scale * 4))));
  const used = new Set<ManagedPolicy>();
  const pickCustom = () => {
    const p = rng.pick(custom);
    used.add(p);
    return p;
  };
  const awsPolicy = (name: string) => {
    const p = aws.get(name)!;
    used.add(p);
    return p;
  };
  const inline = (team: string, env: string, n: number) => ({
    PolicyName: `${team}-${env}-inline-${n}`,
    PolicyDocument: doc(...customStatements(rng, team, env, n)),
  });

  // groups
  const groups: GroupSpec[] = [];
  const groupCount = Math.max(6, Math.round(1_000 * Math.min(1, scale * 4)));
  for (let i = 0; i < groupCount; i++) {
    const team = TEAMS[i % TEAMS.length]!;
    const kind = ['developers', 'readonly', 'deployers', 'oncall', 'admins'][
      Math.floor(i / TEAMS.length) % 5
    ]!;
    const name = `${team}-${kind}-${i}`;
    const attached: ManagedPolicy[] = [];
    if (kind === 'readonly') attached.push(awsPolicy(rng.next() < 0.5 ? 'ReadOnlyAccess' : 'ViewOnlyAccess'));
    else if (kind === 'admins')
      attached.push(awsPolicy(rng.next() < 0.3 ? 'AdministratorAccess' : 'PowerUserAccess'));
    for (let k = 1 + rng.int(2); k > 0; k--) attached.push(pickCustom());
    groups.push({
      name,
      json: {
        Path: '/',
        GroupName: name,
        GroupId: awsId(rng, 'AGPA'),
        Arn: `arn:aws:iam::${ACCOUNT}:group/${name}`,
        CreateDate: awsTime(rng, 2018),
        GroupPolicyList: rng.next() < 0.3 ? [inline(team, 'all', i)] : [],
        AttachedManagedPolicies: attached.map(attachment),
      },
    });
  }

  const out = new TextSink(file);
  const users = Math.round(identities * 0.25);
  const roles = identities - users;

  out.write('{\n    "UserDetailList": [\n');
  for (let i = 0; i < users; i++) {
    const team = rng.pick(TEAMS);
    const env = rng.pick(ENVS);
    const name = i % 5 === 0 ? `${team}.person${i}` : `svc-${team}-${env}-${i}`;
    const u: Record<string, unknown> = {
      Path: i % 3 === 0 ? '/service-accounts/' : '/',
      UserName: name,
      UserId: awsId(rng, 'AIDA'),
      Arn: `arn:aws:iam::${ACCOUNT}:user/${i % 3 === 0 ? 'service-accounts/' : ''}${name}`,
      CreateDate: awsTime(rng, 2019),
    };
    if (rng.next() < 0.25) u.UserPolicyList = [inline(team, env, i)];
    const gl: string[] = [];
    for (let k = rng.next() < 0.85 ? 1 + rng.int(2) : 0; k > 0; k--) gl.push(rng.pick(groups).name);
    u.GroupList = [...new Set(gl)];
    const attached: ManagedPolicy[] = [];
    if (rng.next() < 0.3) attached.push(pickCustom());
    if (rng.next() < 0.05) attached.push(awsPolicy('AmazonS3ReadOnlyAccess'));
    u.AttachedManagedPolicies = attached.map(attachment);
    if (rng.next() < 0.1)
      u.PermissionsBoundary = {
        PermissionsBoundaryType: 'Policy',
        PermissionsBoundaryArn: `arn:aws:iam::${ACCOUNT}:policy/boundary-${team}`,
      };
    u.Tags = tags(rng, team, env);
    out.write((i ? ',\n' : '') + element(u));
  }
  out.write('\n    ],\n    "GroupDetailList": [\n');
  out.write(groups.map((g) => element(g.json)).join(',\n'));
  out.write('\n    ],\n    "RoleDetailList": [\n');

  for (let i = 0; i < roles; i++) {
    const team = rng.pick(TEAMS);
    const env = rng.pick(ENVS);
    const u = rng.next();
    let name: string;
    let path = '/';
    let trust: Record<string, unknown>[];
    const attached: ManagedPolicy[] = [];
    let profile = false;
    const svc = (service: string | string[]) => [
      { Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' },
    ];
    if (u < 0.2) {
      name = `${team}-${env}-lambda-${i}`;
      path = '/service-role/';
      trust = svc('lambda.amazonaws.com');
      attached.push(
        awsPolicy(rng.next() < 0.3 ? 'AWSLambdaVPCAccessExecutionRole' : 'AWSLambdaBasicExecutionRole'),
      );
      if (rng.next() < 0.7) attached.push(pickCustom());
    } else if (u < 0.4) {
      name = `${team}-${env}-task-${i}`;
      trust = svc('ecs-tasks.amazonaws.com');
      attached.push(rng.next() < 0.4 ? awsPolicy('AmazonECSTaskExecutionRolePolicy') : pickCustom());
      if (rng.next() < 0.5) attached.push(pickCustom());
    } else if (u < 0.52) {
      name = `${team}-${env}-instance-${i}`;
      trust = svc('ec2.amazonaws.com');
      profile = true;
      attached.push(awsPolicy('AmazonSSMManagedInstanceCore'));
      if (rng.next() < 0.5) attached.push(awsPolicy('CloudWatchAgentServerPolicy'));
      if (rng.next() < 0.6) attached.push(pickCustom());
    } else if (u < 0.7) {
      name = `${team}-${env}-irsa-${i}`;
      const oidc = `oidc.eks.us-east-1.amazonaws.com/id/${rng.hex(32).toUpperCase()}`;
      trust = [
        {
          Effect: 'Allow',
          Principal: { Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/${oidc}` },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: {
              [`${oidc}:sub`]: `system:serviceaccount:${team}:${team}-${i}`,
              [`${oidc}:aud`]: 'sts.amazonaws.com',
            },
          },
        },
      ];
      attached.push(pickCustom());
    } else if (u < 0.76) {
      name = `${team}-github-deploy-${i}`;
      trust = [
        {
          Effect: 'Allow',
          Principal: {
            Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/token.actions.githubusercontent.com`,
          },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' },
            StringLike: { 'token.actions.githubusercontent.com:sub': `repo:example-org/${team}-${i}:*` },
          },
        },
      ];
      attached.push(pickCustom());
      if (rng.next() < 0.05) attached.push(awsPolicy('PowerUserAccess'));
    } else if (u < 0.79) {
      const vendor = rng.pick(VENDOR_ACCOUNTS);
      name = `vendor-${vendor.slice(0, 4)}-integration-${i}`;
      trust = [
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${vendor}:root` },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'sts:ExternalId': rng.hex(24) } },
        },
      ];
      attached.push(awsPolicy(rng.next() < 0.3 ? 'SecurityAudit' : 'ViewOnlyAccess'));
    } else if (u < 0.8) {
      const perm = rng.pick(['AdministratorAccess', 'ReadOnlyAccess', 'PowerUserAccess']);
      name = `AWSReservedSSO_${perm}_${rng.hex(16)}`;
      path = '/aws-reserved/sso.amazonaws.com/';
      trust = [
        {
          Effect: 'Allow',
          Principal: {
            Federated: `arn:aws:iam::${ACCOUNT}:saml-provider/AWSSSO_${rng.hex(16)}_DO_NOT_DELETE`,
          },
          Action: ['sts:AssumeRoleWithSAML', 'sts:TagSession'],
          Condition: { StringEquals: { 'SAML:aud': 'https://signin.aws.amazon.com/saml' } },
        },
      ];
      attached.push(awsPolicy(perm));
    } else if (u < 0.83) {
      name = `AWSServiceRoleForAutoScaling_${i}`;
      path = '/aws-service-role/autoscaling.amazonaws.com/';
      trust = svc('autoscaling.amazonaws.com');
      attached.push(awsPolicy('AutoScalingServiceRolePolicy'));
    } else {
      name = `${team}-${env}-worker-${i}`;
      trust = [
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/${team}-${env}-task-${rng.int(Math.max(1, i))}` },
          Action: 'sts:AssumeRole',
        },
      ];
      attached.push(pickCustom());
    }
    const arn = `arn:aws:iam::${ACCOUNT}:role${path}${name}`;
    const roleId = awsId(rng, 'AROA');
    const created = awsTime(rng, 2019);
    const trustDoc = doc(...trust);
    const r: Record<string, unknown> = {
      Path: path,
      RoleName: name,
      RoleId: roleId,
      Arn: arn,
      CreateDate: created,
      AssumeRolePolicyDocument: trustDoc,
      InstanceProfileList: profile
        ? [
            {
              Path: '/',
              InstanceProfileName: name,
              InstanceProfileId: awsId(rng, 'AIPA'),
              Arn: `arn:aws:iam::${ACCOUNT}:instance-profile/${name}`,
              CreateDate: created,
              Roles: [
                {
                  Path: path,
                  RoleName: name,
                  RoleId: roleId,
                  Arn: arn,
                  CreateDate: created,
                  AssumeRolePolicyDocument: trustDoc,
                },
              ],
            },
          ]
        : [],
      RolePolicyList: [] as unknown[],
      AttachedManagedPolicies: [...new Set(attached)].map(attachment),
      Tags: path.startsWith('/aws-') ? [] : tags(rng, team, env),
      RoleLastUsed:
        rng.next() < 0.7
          ? {
              LastUsedDate:
                new Date(Date.UTC(2026, 0, 1) + rng.int(60 * 86_400) * 1000).toISOString().slice(0, 19) +
                '+00:00',
              Region: rng.pick(REGIONS),
            }
          : {},
    };
    const inl = path.startsWith('/aws-') ? 0 : rng.next() < 0.35 ? (rng.next() < 0.2 ? 2 : 1) : 0;
    for (let k = 0; k < inl; k++) (r.RolePolicyList as unknown[]).push(inline(team, env, i * 2 + k));
    if (rng.next() < 0.05)
      r.PermissionsBoundary = {
        PermissionsBoundaryType: 'Policy',
        PermissionsBoundaryArn: `arn:aws:iam::${ACCOUNT}:policy/boundary-${team}`,
      };
    out.write((i ? ',\n' : '') + element(r));
  }

  out.write('\n    ],\n    "Policies": [\n');
  let k = 0;
  for (const p of [...aws.values(), ...custom]) {
    if (!used.has(p)) continue;
    const versions = p.versions.map((d, v) => ({
      Document: d,
      VersionId: `v${p.versions.length - v}`,
      IsDefaultVersion: v === 0,
      CreateDate: p.created,
    }));
    const json = {
      PolicyName: p.name,
      PolicyId: p.id,
      Arn: p.arn,
      Path: p.path,
      DefaultVersionId: `v${p.versions.length}`,
      AttachmentCount: 1,
      PermissionsBoundaryUsageCount: 0,
      IsAttachable: true,
      CreateDate: p.created,
      UpdateDate: p.created,
      PolicyVersionList: versions,
    };
    out.write((k++ ? ',\n' : '') + element(json));
  }
  out.write('\n    ]\n}\n');
  return { bytes: out.close(), users, roles, groups: groups.length, policies: k };
}
