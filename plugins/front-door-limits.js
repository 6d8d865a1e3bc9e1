'use strict';

// Throttles every request at the front door, keyless ones included. The framework can only throttle through a
// usage plan, and API Gateway applies a usage plan to requests that carry an API key: without one, nothing capped
// the public REST API, and the HTTP API had no setting at all. So:
// - REST API: after each deploy, the stage's default method throttling (`/*/*/throttling/...`) through API
//   Gateway's UpdateStage, as the framework itself sets a stage's logs and tracing. Not in the template: the stage
//   belongs to the framework's Deployment, which is a new resource on every deploy, and CloudFormation refuses a
//   Deployment's StageDescription once its stage exists (every deploy after the first would fail). The npm plugin
//   serverless-api-gateway-throttling does this too, through provider.request(), which osls 4 removed.
//   So a pipeline must deploy with `serverless deploy --package DIR`: `aws cloudformation deploy` of the packaged
//   template leaves the REST stage unthrottled (docs/deploy/aws.md, "Cost cap").
// - HTTP API: the $default stage's default route throttling, in the template (that stage is one lasting resource).
// A Function URL has no front door to throttle: reserved concurrency (`maxConcurrency`) is its only cap.
// Settings: custom.frontDoorLimits in serverless.yml (from --param="rateLimit=..." and "burstLimit=...", which
// plugins/params.js checks).

const { APIGatewayClient, UpdateStageCommand } = require('@aws-sdk/client-api-gateway');
const { CloudFormationClient, paginateListStackResources } = require('@aws-sdk/client-cloudformation');

const REST_API = 'ApiGatewayRestApi'; // the framework's logical id for the REST API it creates

class FrontDoorLimits {
  constructor(serverless) {
    this.serverless = serverless;
    this.provider = serverless.getProvider('aws');
    this.hooks = {
      'before:package:finalize': () => this.compile(),
      'after:deploy:deploy': () => this.throttleRestApiStage(),
    };
  }

  // The values plugins/params.js has checked (whole numbers of at least 1), as numbers
  settings() {
    const { rateLimit, burstLimit } = this.serverless.service.custom.frontDoorLimits || {};
    return { rateLimit: Number(rateLimit), burstLimit: Number(burstLimit) };
  }

  compile() {
    const { rateLimit, burstLimit } = this.settings();
    const resources = this.serverless.service.provider.compiledCloudFormationTemplate.Resources;
    for (const resource of Object.values(resources)) {
      if (resource.Type === 'AWS::ApiGatewayV2::Stage') {
        resource.Properties.DefaultRouteSettings = {
          ...resource.Properties.DefaultRouteSettings,
          ThrottlingRateLimit: rateLimit,
          ThrottlingBurstLimit: burstLimit,
        };
      }
    }
  }

  async throttleRestApiStage() {
    const template = this.serverless.service.provider.compiledCloudFormationTemplate;
    if (!template.Resources[REST_API]) return; // another front door, or `deploy function`
    const { rateLimit, burstLimit } = this.settings();
    const config = await this.provider.getAwsSdkV3Config();
    const restApiId = await this.stackResourceId(new CloudFormationClient(config), REST_API);
    const stageName = this.provider.getStage();
    await new APIGatewayClient(config).send(
      new UpdateStageCommand({
        restApiId,
        stageName,
        patchOperations: [
          { op: 'replace', path: '/*/*/throttling/rateLimit', value: String(rateLimit) },
          { op: 'replace', path: '/*/*/throttling/burstLimit', value: String(burstLimit) },
        ],
      })
    );
    this.serverless.cli.log(`Front door: stage ${stageName} throttled at ${rateLimit} requests/s, bursts of ${burstLimit}`);
  }

  async stackResourceId(cloudFormation, logicalId) {
    const pages = paginateListStackResources(
      { client: cloudFormation },
      { StackName: this.provider.naming.getStackName() }
    );
    for await (const page of pages) {
      const found = page.StackResourceSummaries.find((resource) => resource.LogicalResourceId === logicalId);
      if (found) return found.PhysicalResourceId;
    }
    throw new this.serverless.classes.Error(`The stack has no ${logicalId}: the front door could not be throttled`);
  }
}

module.exports = FrontDoorLimits;
