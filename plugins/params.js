'use strict';

// Every --param="name=value" checked against the parameters this service has, before the configuration is
// resolved: a misspelt name would otherwise be ignored, and a value outside a list (api, arch) would end in the
// framework's "Value not found at "self" source", which names neither the parameter nor what it may be.
// Runs in the plugin's constructor: the framework loads plugins before it resolves ${param:...} variables.
// The defaults are params.default in serverless.yml; serverless-container.yml includes the same block.

const POSITIVE_INTEGER = /^[1-9][0-9]*$/;
const BUCKET_NAME = /^(?!\d+\.\d+\.\d+\.\d+$)(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const FOLDER = /^[^/].*\/$/;
// CloudWatch Logs' retention periods, as the framework's schema lists them (provider.logRetentionInDays)
const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 2192, 2557, 2922, 3288, 3653,
].map(String);
const BOOLEAN = ['true', 'false'];

const oneOf = (values) => ({ test: (value) => values.includes(value), allowed: `one of ${values.join(', ')}` });
const positive = (unit) => ({ test: (value) => POSITIVE_INTEGER.test(value), allowed: `a whole number of ${unit}, at least 1` });

// zipOnly: settings of the zip route (serverless.yml) that a container image cannot have (SnapStart supports
// no images; the image brings its own Python; the storage trigger is configured on the zip route only).
const PARAMS = {
  api: oneOf(['rest', 'http', 'url', 'url-iam']),
  arch: oneOf(['x86_64', 'arm64']),
  python: { ...oneOf(['3.11', '3.12', '3.13']), zipOnly: true },
  apiKey: oneOf(BOOLEAN),
  rateLimit: positive('requests per second'),
  burstLimit: positive('requests'),
  dailyQuota: positive('requests per day'),
  maxConcurrency: positive('concurrent executions'),
  snapStart: { ...oneOf(BOOLEAN), zipOnly: true },
  keepVersions: positive('versions'),
  tracing: oneOf(BOOLEAN),
  logRetentionDays: oneOf(RETENTION_DAYS),
  bucket: {
    test: (value) => BUCKET_NAME.test(value),
    allowed: 'an S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)',
    zipOnly: true,
  },
  bucketExists: { ...oneOf(BOOLEAN), zipOnly: true },
  uploadsPrefix: { test: (value) => FOLDER.test(value), allowed: 'a folder of keys, like uploads/', zipOnly: true },
  resultsPrefix: { test: (value) => FOLDER.test(value), allowed: 'a folder of keys, like results/', zipOnly: true },
  backfill: { ...oneOf(BOOLEAN), zipOnly: true },
  backfillBatch: { ...positive('keys per invocation'), zipOnly: true },
  backfillConcurrency: { ...positive('invocations at once'), zipOnly: true },
};

class Params {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.check(options.param);
  }

  check(given) {
    const fail = (message) => {
      throw new this.serverless.classes.Error(message);
    };
    const configuration = this.serverless.configurationInput || {};
    const functions = Object.values(configuration.functions || {});
    const image = functions.some((fn) => fn && fn.image);
    // A parameter the configuration declares (params.default) and this table does not know is accepted too:
    // true/false if its default is one of them, any value otherwise.
    const declared = ((configuration.params || {}).default || {});
    const spec = (name) =>
      PARAMS[name] ||
      (Object.prototype.hasOwnProperty.call(declared, name)
        ? BOOLEAN.includes(String(declared[name]))
          ? oneOf(BOOLEAN)
          : { test: () => true }
        : null);
    const names = [...new Set([...Object.keys(PARAMS), ...Object.keys(declared)])];
    for (const item of [].concat(given || [])) {
      const separator = item.indexOf('=');
      const name = separator === -1 ? item : item.slice(0, separator);
      const value = separator === -1 ? '' : item.slice(separator + 1).trim();
      const rule = spec(name);
      if (!rule) fail(`--param="${item}": no parameter "${name}". The parameters: ${names.join(', ')}`);
      if (image && rule.zipOnly) {
        fail(`--param="${item}": "${name}" applies to the zip route (serverless.yml), not to a container image`);
      }
      if (!rule.test(value)) fail(`--param="${item}": ${name} must be ${rule.allowed}`);
    }
    const values = Object.fromEntries(
      [].concat(given || []).map((item) => [item.split('=')[0], item.slice(item.indexOf('=') + 1).trim()]),
    );
    if (values.backfill === 'true' && !values.bucket) {
      fail('--param="backfill=true" classifies the photos of a bucket: give it with --param="bucket=NAME"');
    }
  }
}

module.exports = Params;
