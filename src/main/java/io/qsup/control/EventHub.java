package io.qsup.control;

import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Fans events out to control-socket subscribers.
 *
 * <p>Threading: {@link #publish} may be called from any thread and never blocks; each subscriber's
 * consumer must only enqueue (sessions use a bounded outbox). The subscriber list is copy-on-write, so
 * publishing takes no lock.
 */
public final class EventHub {
    private final CopyOnWriteArrayList<Subscription> subscriptions = new CopyOnWriteArrayList<>();

    /** A live subscription; {@link #close} removes it. */
    public final class Subscription implements AutoCloseable {
        private final EventFilter filter;
        private final Consumer<ControlEvent> sink;

        private Subscription(EventFilter filter, Consumer<ControlEvent> sink) {
            this.filter = filter;
            this.sink = sink;
        }

        @Override
        public void close() {
            subscriptions.remove(this);
        }
    }

    public Subscription subscribe(EventFilter filter, Consumer<ControlEvent> sink) {
        Subscription s = new Subscription(filter, sink);
        subscriptions.add(s);
        return s;
    }

    public void publish(ControlEvent event) {
        for (Subscription s : subscriptions) {
            if (s.filter.accepts(event)) {
                s.sink.accept(event);
            }
        }
    }

    public int subscriberCount() {
        return subscriptions.size();
    }
}
