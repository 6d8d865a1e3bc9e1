'use strict';

// --param="bucket=NAME": photos created under the uploads prefix of that bucket invoke the same function
// (handlers/aws.lambda_handler recognises the S3 event), which writes each result under the results prefix.
// Added to the configuration before it is compiled:
// - the s3 event, filtered to the uploads prefix (the bucket is created, or used as it is with bucketExists=true);
// - the function's role may read (and list) <uploads>* and write <results>* of that bucket, nothing else;
// - asynchronous retries (2), then the event goes to a dead-letter queue (UploadFailures, kept 14 days);
// - a bucket it creates is kept by `serverless remove` and by a replacement (DeletionPolicy, UpdateReplacePolicy
//   Retain): CloudFormation cannot delete a bucket that holds photos, and must never delete the user's photos.
// Settings: custom.storage in serverless.yml.

const BUCKET_NAME = /^(?!\d+\.\d+\.\d+\.\d+$)(?!xn--)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX = /^[^/].*\/$/;
const QUEUE = 'UploadFailures';

class StorageTrigger {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:initialize': () => this.addTrigger(),
      'before:package:finalize': () => this.retainBucket(),
    };
  }

  settings() {
    const { bucket, existing, uploadsPrefix, resultsPrefix } = this.serverless.service.custom.storage || {};
    const fail = (message) => {
      throw new this.serverless.classes.Error(message);
    };
    if (!BUCKET_NAME.test(bucket) || bucket.includes('..')) {
      fail(`--param="bucket=${bucket}": not an S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)`);
    }
    for (const [name, value] of Object.entries({ uploadsPrefix, resultsPrefix })) {
      if (!PREFIX.test(String(value))) fail(`--param="${name}=${value}": a folder of keys, like uploads/`);
    }
    if (uploadsPrefix.startsWith(resultsPrefix) || resultsPrefix.startsWith(uploadsPrefix)) {
      // results written where uploads are watched would trigger the function again, forever
      fail(`--param="resultsPrefix=${resultsPrefix}" must not overlap uploadsPrefix=${uploadsPrefix}`);
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
      [QUEUE]: { Type: 'AWS::SQS::Queue', Properties: { MessageRetentionPeriod: 1209600 } },
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

  retainBucket() {
    const { bucket } = this.serverless.service.custom.storage || {};
    if (!bucket) return;
    const resources = this.serverless.service.provider.compiledCloudFormationTemplate.Resources;
    for (const resource of Object.values(resources)) {
      if (resource.Type === 'AWS::S3::Bucket' && resource.Properties && resource.Properties.BucketName === bucket) {
        resource.DeletionPolicy = 'Retain';
        resource.UpdateReplacePolicy = 'Retain';
      }
    }
  }
}

// aws, aws-cn or aws-us-gov: the stack's own partition (a prefix may hold `${`, so Join rather than Sub)
function s3Arn(path) {
  return { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${path}`]] };
}

module.exports = StorageTrigger;
