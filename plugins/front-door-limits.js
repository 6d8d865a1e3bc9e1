'use strict';

// Throttles every request at the front door, keyless ones included. The framework can only throttle through a
// usage plan, and API Gateway applies a usage plan to requests that carry an API key: without one, nothing capped
// the public REST API, and the HTTP API had no setting at all. So, on the template the framework compiled:
// - REST API: the stage's default method throttling, through the Deployment that creates or updates the stage
//   (the framework writes a new Deployment on every deploy, so a changed limit reaches the stage each time);
// - HTTP API: the $default stage's default route throttling.
// A Function URL has no front door to throttle: reserved concurrency (`maxConcurrency`) is its only cap.
// Settings: custom.frontDoorLimits in serverless.yml (from --param="rateLimit=..." and "burstLimit=...").

const POSITIVE_INTEGER = /^[1-9][0-9]*$/;

class FrontDoorLimits {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:initialize': () => this.settings(), // a bad value stops the command before any work
      'before:package:finalize': () => this.throttle(),
    };
  }

  settings() {
    const { rateLimit, burstLimit } = this.serverless.service.custom.frontDoorLimits || {};
    const values = { rateLimit, burstLimit };
    for (const [name, value] of Object.entries(values)) {
      if (!POSITIVE_INTEGER.test(String(value))) {
        throw new this.serverless.classes.Error(
          `--param="${name}=${value}": requests per second must be a whole number of at least 1`
        );
      }
      values[name] = Number(value);
    }
    for (const [name, fn] of Object.entries(this.serverless.service.functions || {})) {
      const reserved = fn.reservedConcurrency;
      if (reserved !== undefined && reserved !== null && !POSITIVE_INTEGER.test(String(reserved))) {
        // 0 would be accepted by AWS and stop the function from running at all
        throw new this.serverless.classes.Error(
          `--param="maxConcurrency=${reserved}" (function ${name}): a whole number of at least 1, or leave it out`
        );
      }
    }
    return values;
  }

  throttle() {
    const { rateLimit, burstLimit } = this.settings();
    const resources = this.serverless.service.provider.compiledCloudFormationTemplate.Resources;
    for (const resource of Object.values(resources)) {
      if (resource.Type === 'AWS::ApiGateway::Deployment' && resource.Properties.StageName) {
        resource.Properties.StageDescription = {
          ...resource.Properties.StageDescription,
          ThrottlingRateLimit: rateLimit,
          ThrottlingBurstLimit: burstLimit,
        };
      } else if (resource.Type === 'AWS::ApiGatewayV2::Stage') {
        resource.Properties.DefaultRouteSettings = {
          ...resource.Properties.DefaultRouteSettings,
          ThrottlingRateLimit: rateLimit,
          ThrottlingBurstLimit: burstLimit,
        };
      }
    }
  }
}

module.exports = FrontDoorLimits;
