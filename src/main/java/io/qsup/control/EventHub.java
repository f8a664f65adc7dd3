package io.qsup.control;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Fans events out to control-socket subscribers.
 *
 * <p>Threading: {@link #publish} may be called from any thread and never blocks; each subscriber's
 * consumer must only enqueue (sessions use a bounded outbox). The subscriber list is copy-on-write, so
 * delivering takes no lock, and each subscription's filter is a volatile field; the history ring is guarded by its
 * own monitor, held only to add or copy.
 */
public final class EventHub {
    /** How many recent events {@code query-events} can show. */
    public static final int HISTORY_LIMIT = 1000;

    private final CopyOnWriteArrayList<Subscription> subscriptions = new CopyOnWriteArrayList<>();
    private final ArrayDeque<ControlEvent> history = new ArrayDeque<>();

    /** A live subscription; its filter can be changed in place, and {@link #close} removes it. */
    public final class Subscription implements AutoCloseable {
        private volatile EventFilter filter;
        private final Consumer<ControlEvent> sink;

        private Subscription(EventFilter filter, Consumer<ControlEvent> sink) {
            this.filter = filter;
            this.sink = sink;
        }

        /** Replaces the filter; an event is matched against one filter or the other, never delivered twice. */
        public void filter(EventFilter newFilter) {
            filter = newFilter;
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
        synchronized (history) {
            if (history.size() == HISTORY_LIMIT) {
                history.removeFirst();
            }
            history.addLast(event);
        }
        for (Subscription s : subscriptions) {
            if (s.filter.accepts(event)) {
                s.sink.accept(event);
            }
        }
    }

    /** The recent events that match, oldest first. */
    public List<ControlEvent> history(EventFilter filter) {
        List<ControlEvent> copy;
        synchronized (history) {
            copy = new ArrayList<>(history);
        }
        copy.removeIf(e -> !filter.accepts(e));
        return copy;
    }

    public int subscriberCount() {
        return subscriptions.size();
    }
}
