//===- MPIChannel.h - collectives over MPI ----------------------*- C++ -*-===//
//
// The host channel of multi-process plans on the CPU: every operation is the
// matching MPI call on a communicator (MPI_COMM_WORLD under mpirun, a
// stage's split for the tensor-parallel group, or one the embedding program
// supplies). MPI carries the bytes between processes on one machine or many
// (shared memory, TCP: `mpirun --mca btl tcp,self`).
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_COMM_MPI_MPICHANNEL_H
#define FALCON_RUNTIME_COMM_MPI_MPICHANNEL_H

#include "comm/Channel.h"

// The C API only (OpenMPI's C++ bindings need libmpi_cxx).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

namespace falcon::runtime::comm::mpi {

/// Initializes MPI (thread level: funneled) unless the program already did,
/// and makes MPI report errors instead of aborting on `communicator`.
falcon_status_t ensureInitialized();

/// A channel over `communicator`: its rank and size are the channel's. The
/// communicator is duplicated (the channel's traffic never meets the
/// program's) and the duplicate freed with the channel.
falcon_status_t createMPIChannel(MPI_Comm communicator, falcon_comm_channel_t **outChannel);

/// A channel over the ranks of `channel` (an MPI channel) that passed the
/// same `color`, ordered by `key`: a pipeline stage's tensor-parallel group.
falcon_status_t splitMPIChannel(falcon_comm_channel_t *channel, int color, int key,
                                falcon_comm_channel_t **outChannel);

} // namespace falcon::runtime::comm::mpi

#endif // FALCON_RUNTIME_COMM_MPI_MPICHANNEL_H
