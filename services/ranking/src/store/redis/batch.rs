//! Submissions that arrive together go to Redis together.
//!
//! Under load many SubmitScore calls are in flight at once. Sent one by one,
//! each costs the server a trip through the Redis client (a channel hop, a
//! write and a read system call, the wake-ups) and Redis a read and a write
//! of its own: the server spent more CPU on that than on the gRPC call
//! itself. Here a submission waits while earlier batches are on their way
//! (at most [`BATCHES_IN_FLIGHT`]), and whatever has waited goes in the next
//! batch: one pipeline, one write, one read. A call that finds nothing in
//! flight goes at once, alone, so an idle service answers as fast as before.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{
    super::{Standing, StoreError},
    connector::{Connector, needs_redis_7},
    submission::{self, Submission},
};

/// Batches on their way to Redis at once: while one is answered, the next
/// is sent, so Redis is not left idle between them.
const BATCHES_IN_FLIGHT: usize = 2;

/// The most submissions in one batch: Redis serves nobody else while it runs
/// one, and 64 BEST submissions take it about a millisecond.
const MAX_BATCH: usize = 64;

/// Where submissions wait for their batch. Cheap to clone.
#[derive(Clone)]
pub(super) struct Queue {
    waiting: mpsc::Sender<Waiting>,
}

/// A submission and where its answer goes.
struct Waiting {
    submission: Submission,
    answer: oneshot::Sender<Result<Vec<Standing>, StoreError>>,
}

impl Queue {
    /// A queue whose batches go through `connector`, sent by a task that ends
    /// when the last clone of the queue is dropped. Needs a Tokio runtime.
    pub(super) fn start(connector: Arc<Connector>) -> Self {
        let (waiting, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(send_batches(connector, queue));
        Self { waiting }
    }

    /// Sends `submission` with the next batch; its standings, or why not.
    pub(super) async fn submit(&self, submission: Submission) -> Result<Vec<Standing>, StoreError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || StoreError::Internal("the submission queue has stopped".into());
        self.waiting.send(Waiting { submission, answer }).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

async fn send_batches(connector: Arc<Connector>, mut queue: mpsc::Receiver<Waiting>) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { return };
        // Waits for one, then takes whatever else is already waiting.
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let connector = Arc::clone(&connector);
        let sending = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        tokio::spawn(async move {
            send(&connector, sending).await;
            drop(permit);
        });
    }
}

/// Sends one batch and hands every submission its answer. A submission
/// whose caller gave up while it waited (its deadline passed, or it went
/// away: nobody listens for the answer) is not written: it would count
/// while its caller was told it failed.
async fn send(connector: &Connector, mut batch: Vec<Waiting>) {
    batch.retain(|waiting| !waiting.answer.is_closed());
    if batch.is_empty() {
        return;
    }
    let submissions: Vec<&Submission> = batch.iter().map(|waiting| &waiting.submission).collect();
    let pipeline = &submission::pipeline(&submissions, true);
    let answers: Result<Vec<redis::Value>, StoreError> = connector
        .run(|mut connection| async move { pipeline.query_async(&mut connection).await })
        .await
        .map_err(needs_redis_7);
    let answers = match answers {
        Ok(answers) if answers.len() == batch.len() => answers,
        Ok(answers) => {
            let error = StoreError::Internal(format!("a batch of {} answered {} values", batch.len(), answers.len()));
            return fail(batch, &error);
        }
        Err(error) => return fail(batch, &error),
    };
    for (waiting, answer) in batch.into_iter().zip(answers) {
        // A caller that gave up (its deadline passed) no longer listens.
        let _ = waiting.answer.send(waiting.submission.standings(answer));
    }
}

fn fail(batch: Vec<Waiting>, error: &StoreError) {
    for waiting in batch {
        let _ = waiting.answer.send(Err(error.clone()));
    }
}
