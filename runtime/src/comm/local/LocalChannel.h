//===- LocalChannel.h - the single-process channel --------------*- C++ -*-===//
//
// A channel of one rank (rank 0, world size 1): all-reduce, all-gather and
// broadcast are copies or nothing, the barrier returns at once, and a send to
// rank 0 waits in a mailbox for the recv that takes it. What lets a
// single-process run use the same code paths as a multi-rank one.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_COMM_LOCAL_LOCALCHANNEL_H
#define FALCON_RUNTIME_COMM_LOCAL_LOCALCHANNEL_H

#include "comm/Channel.h"

namespace falcon::runtime::comm::local {

falcon_status_t createLocalChannel(falcon_comm_channel_t **outChannel);

} // namespace falcon::runtime::comm::local

#endif // FALCON_RUNTIME_COMM_LOCAL_LOCALCHANNEL_H
