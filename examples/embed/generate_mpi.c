/*===- generate_mpi.c - a rank of a parallel plan in an MPI program -------===*
 *
 * usage: mpirun -np N+1 generate_mpi ARTIFACT_DIR TOKEN...
 *
 * An MPI program that runs a tp x pp artifact of N ranks on a communicator
 * of its own: the last process of MPI_COMM_WORLD stays out (it could do any
 * other work), the first N split off and open their ranks with
 * falcon_model_options_t.mpi_communicator. Every rank prefills the prompt and
 * greedily generates 8 tokens with falcon_session_generate_greedy (SPMD: the
 * same calls everywhere); rank 0 prints them. Built and run by
 * test/Parallel/embed-mpi.test.
 *
 *===----------------------------------------------------------------------===*/

#include "falcon/runtime.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int check(falcon_status_t status, int rank) {
  if (!status)
    return 0;
  fprintf(stderr, "rank %d: error: %s\n", rank, falcon_status_message(status));
  falcon_status_free(status);
  return 1;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int worldRank = 0, worldSize = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
  MPI_Comm_size(MPI_COMM_WORLD, &worldSize);
  if (argc < 3 || worldSize < 2) {
    if (worldRank == 0)
      fprintf(stderr, "usage: mpirun -np N+1 %s ARTIFACT_DIR TOKEN...\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  /* The plan's ranks: every process but the last. */
  int inPlan = worldRank < worldSize - 1;
  MPI_Comm planComm;
  MPI_Comm_split(MPI_COMM_WORLD, inPlan ? 0 : MPI_UNDEFINED, worldRank, &planComm);
  int failed = 0;
  if (inPlan) {
    int rank = 0, size = 0;
    MPI_Comm_rank(planComm, &rank);
    MPI_Comm_size(planComm, &size);
    falcon_model_options_t options;
    falcon_model_options_initialize(&options);
    options.rank = rank;
    options.world_size = size;
    options.mpi_communicator = &planComm;
    falcon_model_t *model = NULL;
    failed = check(falcon_model_open(argv[1], &options, &model), rank);
    falcon_session_t *session = NULL;
    if (!failed)
      failed = check(falcon_session_create(model, NULL, &session), rank);
    const int64_t promptLength = argc - 2, newTokens = 8;
    int64_t *prompt = malloc(sizeof(int64_t) * (size_t)promptLength);
    for (int64_t i = 0; i < promptLength; ++i)
      prompt[i] = strtoll(argv[i + 2], NULL, 10);
    int64_t ids[8];
    if (!failed)
      failed = check(falcon_session_generate_greedy(session, prompt, 1, promptLength,
                                                    newTokens, 8, 0, 0, ids, NULL, NULL,
                                                    NULL),
                     rank);
    if (!failed && rank == 0) {
      for (int64_t i = 0; i < newTokens; ++i)
        printf(i ? " %lld" : "%lld", (long long)ids[i]);
      printf("\n");
    }
    free(prompt);
    falcon_session_release(session);
    falcon_model_release(model);
    MPI_Comm_free(&planComm);
  }
  if (failed)
    MPI_Abort(MPI_COMM_WORLD, 1);
  MPI_Finalize();
  return 0;
}
