package io.qsup.supervisor;

import java.util.concurrent.CompletableFuture;

/**
 * The outcome of an operator request, plus whether its intent reached the disk: a request is carried out even when
 * {@code state-dir} cannot be written, and the caller must be told, since a qsupd restart would not know it.
 *
 * <p>Completes when the request's own future does; thread-safe as any {@link CompletableFuture}.
 */
public final class IntentFuture<T> extends CompletableFuture<T> {
    private final String persistWarning;

    IntentFuture(CompletableFuture<T> outcome, String persistWarning) {
        this.persistWarning = persistWarning;
        outcome.whenComplete((v, e) -> {
            if (e != null) {
                completeExceptionally(e);
            } else {
                complete(v);
            }
        });
    }

    /** Null if the intent was persisted; else why not. */
    public String persistWarning() {
        return persistWarning;
    }
}
