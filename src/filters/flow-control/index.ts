export { flowControlFactory, FLOW_CONTROL_FILTER_NAME, FLOW_CONTROL_TYPE_URL } from './factory.js';
export {
  policyDocumentSchema,
  policySpecSchema,
  parseFlowControlConfig,
  POLICY_API_VERSION,
  POLICY_KIND,
  type FlowControlConfig,
  type ParsedPolicy,
  type PolicyEntry,
  type PolicySpec,
} from './config.js';
export { compileMatch, type RequestMatcher } from './match.js';
export { FlowControlFilter, type BuiltPolicy } from './filter.js';
export { flowControlMetric, FLOW_METRIC, type FlowDecision } from './metrics.js';
export { policiesAdminHandler, countsFromText } from './admin.js';
