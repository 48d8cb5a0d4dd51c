/** The Layotto-compatible gRPC front end and the gRPC channel to the app. */
export { startRuntimeGrpcServer, type RuntimeGrpcServer, type RuntimeGrpcServerOptions } from './server.js';
export { GrpcAppChannel, type GrpcAppChannelOptions } from './app-channel.js';
