'use strict';

// With SnapStart every entry point (API Gateway, the Function URL, S3) invokes the `snapstart` alias, which points
// at the version the last full deploy published. `serverless deploy function` updates $LATEST only, which no
// entry point invokes: its change would never be served. So it is refused for such a function.

class SnapStart {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    this.hooks = { 'before:deploy:function:initialize': () => this.refuse() };
  }

  refuse() {
    const fn = (this.serverless.service.functions || {})[this.options.function];
    if (fn && fn.snapStart === true) {
      throw new this.serverless.classes.Error(
        `\`serverless deploy function\` updates $LATEST only, and with SnapStart (--param="snapStart=true") every ` +
          `entry point of "${this.options.function}" invokes its published version through an alias: the change ` +
          'would never be served. Run `serverless deploy` (with the same --param options) instead.'
      );
    }
  }
}

module.exports = SnapStart;
