'use strict';

// --param="bucket=NAME": photos created under the uploads prefix of that bucket invoke the same function
// (handlers/aws.lambda_handler recognises the S3 event), which writes each result under the results prefix.
// Added to the configuration before it is compiled:
// - the s3 event, filtered to the uploads prefix (the bucket is created, or used as it is with bucketExists=true);
// - the function's role may read (and list) <uploads>* and write <results>* of that bucket, nothing else;
// - asynchronous retries (2), then the event goes to a dead-letter queue (UploadFailures, kept 14 days, encrypted);
// - a bucket it creates is private (every public access blocked), encrypted at rest, and kept by `serverless
//   remove` and by a replacement (RetainExceptOnCreate, UpdateReplacePolicy Retain): CloudFormation cannot delete a
//   bucket that holds photos, and must never delete the user's photos. A deploy that creates it and rolls back
//   deletes it again (it is empty then), so that the same deploy can be retried with the same name.
// Notifications outlive the stack: a kept bucket keeps the notification CloudFormation gave it, which points at
// the removed function, and S3 refuses a new one for the same events and prefix ("Configuration is ambiguously
// defined"). So `serverless remove` deletes this stack's functions' notifications from its buckets, and a deploy
// onto an existing bucket first deletes notifications for this function that the framework did not make (it
// replaces its own, whose Id it generates).
// Settings: custom.storage in serverless.yml; names and formats are checked by plugins/params.js.

const fs = require('fs');
const path = require('path');
const {
  S3Client,
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
} = require('@aws-sdk/client-s3');
const { CloudFormationClient, paginateListStackResources } = require('@aws-sdk/client-cloudformation');

const QUEUE = 'UploadFailures';
const NOTIFICATION_KINDS = ['LambdaFunctionConfigurations', 'QueueConfigurations', 'TopicConfigurations'];

class StorageTrigger {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    this.provider = serverless.getProvider('aws');
    this.hooks = {
      'before:package:initialize': () => this.addTrigger(),
      'before:package:finalize': () => this.secureBucket(),
      'before:deploy:deploy': () => this.dropStaleNotifications(),
      'before:remove:remove': () => this.findStackNotifications(),
      'after:remove:remove': () => this.dropStackNotifications(),
    };
  }

  settings() {
    const { bucket, existing, uploadsPrefix, resultsPrefix } = this.serverless.service.custom.storage || {};
    if (uploadsPrefix.startsWith(resultsPrefix) || resultsPrefix.startsWith(uploadsPrefix)) {
      // results written where uploads are watched would trigger the function again, forever
      throw new this.serverless.classes.Error(
        `--param="resultsPrefix=${resultsPrefix}" must not overlap uploadsPrefix=${uploadsPrefix}`
      );
    }
    return { bucket, existing: existing === true, uploadsPrefix, resultsPrefix };
  }

  addTrigger() {
    const { bucket: wanted } = this.serverless.service.custom.storage || {};
    if (!wanted) return; // not asked for: the HTTP function alone
    const { bucket, existing, uploadsPrefix, resultsPrefix } = this.settings();
    const service = this.serverless.service;
    const fn = service.functions.predict;
    fn.events = [
      ...(fn.events || []),
      { s3: { bucket, event: 's3:ObjectCreated:*', rules: [{ prefix: uploadsPrefix }], existing } },
    ];
    fn.maximumRetryAttempts = 2;
    fn.destinations = { onFailure: { type: 'sqs', arn: { 'Fn::GetAtt': [QUEUE, 'Arn'] } } };

    service.resources = service.resources || {};
    service.resources.Resources = {
      ...(service.resources.Resources || {}),
      [QUEUE]: {
        Type: 'AWS::SQS::Queue',
        // SQS-managed keys: encrypted at rest, and Lambda may send to it without a KMS key policy
        Properties: { MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true },
      },
    };
    const iam = (service.provider.iam = service.provider.iam || {});
    const role = (iam.role = iam.role || {});
    role.statements = [
      ...(role.statements || []),
      { Effect: 'Allow', Action: ['s3:GetObject'], Resource: s3Arn(`${bucket}/${uploadsPrefix}*`) },
      { Effect: 'Allow', Action: ['s3:PutObject'], Resource: s3Arn(`${bucket}/${resultsPrefix}*`) },
      // listing the uploads prefix only: without it S3 answers a deleted photo's GetObject 403, not 404
      {
        Effect: 'Allow',
        Action: ['s3:ListBucket'],
        Resource: s3Arn(bucket),
        Condition: { StringLike: { 's3:prefix': [`${uploadsPrefix}*`] } },
      },
    ];
  }

  secureBucket() {
    const { bucket } = this.serverless.service.custom.storage || {};
    if (!bucket) return;
    const resources = this.serverless.service.provider.compiledCloudFormationTemplate.Resources;
    for (const resource of Object.values(resources)) {
      if (resource.Type === 'AWS::S3::Bucket' && resource.Properties && resource.Properties.BucketName === bucket) {
        resource.DeletionPolicy = 'RetainExceptOnCreate';
        resource.UpdateReplacePolicy = 'Retain';
        Object.assign(resource.Properties, {
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
          // S3-managed keys (S3's default since 2023, stated here so that it is the template's, not the account's)
          BucketEncryption: {
            ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
          },
        });
      }
    }
  }

  // A deploy onto an existing bucket (bucketExists=true): the framework's custom resource adds its notification,
  // so any other notification of this function for that bucket (left by a removed stack) is deleted first.
  async dropStaleNotifications() {
    const template = this.deployedTemplate();
    const targets = Object.values((template && template.Resources) || {})
      .filter((resource) => resource.Type === 'Custom::S3')
      .map(({ Properties: { BucketName, FunctionName } }) => ({ bucket: BucketName, functions: [FunctionName] }));
    for (const { bucket, functions } of targets) {
      const dropped = await this.dropNotifications(bucket, functions, (config) => isFrameworkOwned(config, functions));
      if (dropped) this.serverless.cli.log(`Storage: deleted ${dropped} stale notification(s) of bucket ${bucket}`);
    }
  }

  deployedTemplate() {
    const compiled = this.serverless.service.provider.compiledCloudFormationTemplate;
    if (compiled && compiled.Resources && Object.keys(compiled.Resources).length > 0) return compiled;
    const folder = this.options.package || path.join(this.serverless.serviceDir, '.serverless');
    const file = path.join(folder, this.provider.naming.getCompiledTemplateFileName());
    return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
  }

  async findStackNotifications() {
    const cloudFormation = new CloudFormationClient(await this.provider.getAwsSdkV3Config());
    const buckets = [];
    const functions = [];
    try {
      const pages = paginateListStackResources(
        { client: cloudFormation },
        { StackName: this.provider.naming.getStackName() }
      );
      for await (const page of pages) {
        for (const resource of page.StackResourceSummaries) {
          if (resource.ResourceType === 'AWS::S3::Bucket') buckets.push(resource.PhysicalResourceId);
          if (resource.ResourceType === 'AWS::Lambda::Function') functions.push(resource.PhysicalResourceId);
        }
      }
    } catch (error) {
      if (!String(error.message).includes('does not exist')) throw error;
    }
    this.stackNotifications = { buckets, functions };
  }

  // after the stack is gone: a failed removal leaves the stack, and its bucket's notifications, as they were
  async dropStackNotifications() {
    const { buckets = [], functions = [] } = this.stackNotifications || {};
    for (const bucket of buckets) {
      const dropped = await this.dropNotifications(bucket, functions, () => false);
      if (dropped) this.serverless.cli.log(`Storage: deleted the removed function's notification from bucket ${bucket}`);
    }
  }

  // Deletes the bucket's notifications that invoke one of `functions` (by name, any version or alias), except
  // those `keep` accepts; returns how many it deleted.
  async dropNotifications(bucket, functions, keep) {
    if (!bucket || functions.length === 0) return 0;
    const s3 = new S3Client(await this.provider.getAwsSdkV3Config());
    let configuration;
    try {
      configuration = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
    } catch (error) {
      if (error.name === 'NoSuchBucket') return 0;
      throw error;
    }
    const lambdas = configuration.LambdaFunctionConfigurations || [];
    const kept = lambdas.filter((config) => !functions.includes(functionName(config.LambdaFunctionArn)) || keep(config));
    if (kept.length === lambdas.length) return 0;
    const notification = { LambdaFunctionConfigurations: kept };
    for (const kind of NOTIFICATION_KINDS.slice(1)) {
      if (configuration[kind]) notification[kind] = configuration[kind];
    }
    if (configuration.EventBridgeConfiguration) notification.EventBridgeConfiguration = configuration.EventBridgeConfiguration;
    await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: notification }));
    return lambdas.length - kept.length;
  }
}

// arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] -> NAME
function functionName(arn) {
  return String(arn).split(':')[6];
}

// The framework's custom resource names its notifications `${functionName}-${md5 of the rule}`, and replaces them
function isFrameworkOwned(config, functions) {
  return functions.some((name) => new RegExp(`^${escape(name)}-[a-f0-9]{32}$`).test(config.Id || ''));
}

function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// aws, aws-cn or aws-us-gov: the stack's own partition (a prefix may hold `${`, so Join rather than Sub)
function s3Arn(path) {
  return { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${path}`]] };
}

module.exports = StorageTrigger;
