'use strict';

// `serverless invoke local` and `serverless offline` as docs/deploy/aws.md types them, with or without
// `source .venv/bin/activate`:
// - Both run the handler with the `python3` first on PATH (VIRTUAL_ENV/bin first when it is set). Without the
//   virtualenv that is the system's, which lacks the function's requirements: the run would end in
//   ModuleNotFoundError and a Node.js stack trace. So the project's .venv is used when none is active, and a
//   python3 that cannot import the requirements stops the command with what to do.
// - API Gateway passes a body whose Content-Type matches provider.apiGateway.binaryMediaTypes (image/*) to the
//   function base64-encoded; serverless-offline does so only for application/octet-stream and multipart/form-data
//   (its detectEncoding) and decodes any other body as UTF-8 text, which corrupts a JPEG. So, under `offline`,
//   a request whose type is binary for API Gateway is marked octet-stream for serverless-offline's encoding
//   choice only: the function's event keeps the request's own Content-Type header.

const fs = require('fs');
const http = require('http');
const path = require('path');
const { spawnSync } = require('child_process');

const REQUIREMENT = 'keras_image_helper'; // one of requirements.txt's, imported by core/

class LocalRun {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = { initialize: () => this.prepare() };
  }

  prepare() {
    const command = this.serverless.processedInput.commands.join(' ');
    if (command === 'invoke local' || command.startsWith('offline')) this.usePython();
    if (command.startsWith('offline')) this.passBinaryBodies();
  }

  usePython() {
    const venv = path.join(this.serverless.serviceDir, '.venv');
    if (!process.env.VIRTUAL_ENV && fs.existsSync(path.join(venv, 'bin', 'python3'))) {
      process.env.VIRTUAL_ENV = venv; // both tools put VIRTUAL_ENV/bin first on PATH
    }
    const bin = process.env.VIRTUAL_ENV ? path.join(process.env.VIRTUAL_ENV, 'bin') : null;
    const env = { ...process.env, PATH: [bin, process.env.PATH].filter(Boolean).join(path.delimiter) };
    const probe = spawnSync('python3', ['-c', `import sys, ${REQUIREMENT}; print(sys.executable)`], {
      env,
      encoding: 'utf8',
    });
    if (probe.status !== 0) {
      const which = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { env, encoding: 'utf8' });
      const python = (which.stdout || '').trim() || 'no python3 on PATH';
      throw new this.serverless.classes.Error(
        `The function's requirements are not installed for python3 (${python}): run \`make install\` ` +
          '(it creates .venv), or activate the virtualenv that has them (`source .venv/bin/activate`).'
      );
    }
  }

  passBinaryBodies() {
    const apiGateway = this.serverless.service.provider.apiGateway || {};
    const patterns = (apiGateway.binaryMediaTypes || []).map(
      (type) => new RegExp(`^${type.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^;]*')}\\s*(;|$)`, 'i')
    );
    if (patterns.length === 0) return;
    const emit = http.Server.prototype.emit;
    http.Server.prototype.emit = function (event, request, ...rest) {
      if (event === 'request') {
        const type = request.headers['content-type'];
        if (typeof type === 'string' && patterns.some((pattern) => pattern.test(type))) {
          request.headers['content-type'] = 'application/octet-stream'; // rawHeaders, the event's, unchanged
        }
      }
      return emit.call(this, event, request, ...rest);
    };
  }
}

module.exports = LocalRun;
