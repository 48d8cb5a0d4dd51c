export { tcpCopyConfigSchema, parseTcpCopyConfig, MIN_FILE_SIZE, type TcpCopyConfig } from './config.js';
export { TcpCopy, type ConnectionInfo, type ConnectionTap, type TcpCopyDeps, type TcpCopyStatus } from './tcp-copy.js';
export { tcpCopyAdminHandler, parseTcpCopyCommand, applyTcpCopyCommand, type TcpCopyCommand } from './admin.js';
export { tcpCopyMetrics, type TcpCopyMetrics, type TcpCopyDecision } from './metrics.js';
export { PcapWriter, type PcapWriterOptions, type PcapWriterEvents, type PcapWriterStats, type StopReason } from './pcap-writer.js';
export { PcapFlow, PCAP_MAGIC, PCAP_FILE_HEADER, PCAP_RECORD_HEADER, LINKTYPE_ETHERNET, flowAddresses, parseAddress, type Endpoints } from './packets.js';
