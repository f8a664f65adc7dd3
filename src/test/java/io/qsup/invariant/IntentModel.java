package io.qsup.invariant;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * What one VM should look like once things settle, derived from what the test did to it: the operator verbs qsupd
 * accepted, in the order it accepted them, and the {@code kill -9}s of its QEMU after the last one.
 *
 * <p>The rules (README "Restart policy", {@code RestartDecider}): the last operator request wins; {@code stop} and
 * {@code kill} leave the VM stopped whatever happens afterwards (no restart policy, no daemon restart undoes them);
 * {@code start} and {@code restart} leave it running unless its QEMU was killed afterwards; a kill of a VM that was
 * verifiably running ("clean") is a crash, after which {@code restart: always} and {@code on-failure} bring it back
 * and {@code restart: no} leaves it stopped, also across later daemon restarts. A kill that may have hit a launch or a
 * restart in progress ("not clean") allows every end: qsupd legitimately leaves a launch that was killed before the VM
 * ever ran {@code failed} with a launch error and does not retry it, and a restart's own start follows a kill during
 * its stop. A verb whose connection dropped
 * with the daemon ({@link Acceptance#MAYBE}) and that the persisted intent cannot settle allows the ends of both
 * histories. The start limit is set far above what the test can reach, so {@code failed} is never expected for any
 * other reason.
 *
 * <p>Thread-safe: the driver thread records calls and kills, and worker threads fill in a call's outcome, under this
 * object's monitor.
 */
final class IntentModel {

    enum Policy {
        ALWAYS, ON_FAILURE, NO;

        static Policy parse(String yaml) {
            return valueOf(yaml.toUpperCase(Locale.ROOT).replace('-', '_'));
        }
    }

    /** An operator verb, or the start every {@code autostart} VM gets from the first qsupd. */
    enum Verb {
        AUTOSTART, START, STOP, RESTART, KILL;

        /** The intent qsupd persists for it ({@code none} for the first autostart). */
        String intent() {
            return switch (this) {
                case AUTOSTART -> "none";
                case START, RESTART -> "started";
                case STOP, KILL -> "stopped";
            };
        }

        boolean stops() {
            return this == STOP || this == KILL;
        }
    }

    /** Whether qsupd got the request: it replied, it never got it, or the daemon went away mid-call. */
    enum Acceptance { PENDING, YES, NO, MAYBE }

    /**
     * How a VM can end: running (or paused), stopped, or failed because a launch failed before the VM ever ran
     * (README "Restart policy": such a launch is not retried, whatever the policy).
     */
    enum Outcome { RUNNING, STOPPED, LAUNCH_FAILED }

    /** One operator verb sent to the VM. */
    static final class Call {
        final Verb verb;
        final String line;
        final long sentNanos;
        /** Wall-clock time of day of the send, to line it up with the daemon's log. */
        final java.time.LocalTime sentWall = java.time.LocalTime.now();
        Acceptance acceptance = Acceptance.PENDING;
        String note = "";
        /** True once the daemon went away during this call, so the persisted intent may tell whether it arrived. */
        boolean resolvable;
        /** The state of things before any operator verb; its intent is {@code none}. */
        boolean initial;

        Call(Verb verb, String line, long sentNanos) {
            this.verb = verb;
            this.line = line;
            this.sentNanos = sentNanos;
        }
    }

    /**
     * One {@code kill -9} of the VM's QEMU.
     *
     * @param clean true if the VM was verifiably running with nothing of the operator's pending (see the class doc)
     * @param why   the evidence for {@code clean}, for the report
     */
    record Kill(long atNanos, boolean clean, String why) {}

    /** The ends the model allows, and why. */
    record Expectation(Set<Outcome> outcomes, Set<String> intents, String reasoning) {}

    final String vm;
    final Policy policy;
    final boolean autostart;
    private final ActionLog clock;
    private final List<Call> calls = new ArrayList<>();
    private final List<Kill> kills = new ArrayList<>();

    IntentModel(String vm, Policy policy, boolean autostart, ActionLog clock) {
        this.vm = vm;
        this.clock = clock;
        this.policy = policy;
        this.autostart = autostart;
        Call first = new Call(autostart ? Verb.AUTOSTART : Verb.STOP, autostart ? "autostart by the first qsupd"
                : "autostart: false", clock.t0());
        first.acceptance = Acceptance.YES;
        first.initial = true;
        calls.add(first);
    }

    synchronized Call send(Verb verb, String line, long sentNanos) {
        Call c = new Call(verb, line, sentNanos);
        calls.add(c);
        return c;
    }

    synchronized void settle(Call c, Acceptance a, String note) {
        c.acceptance = a;
        c.note = note;
    }

    synchronized void killed(Kill k) {
        kills.add(k);
    }

    /** The intent after the last call qsupd certainly accepted before {@code c}. */
    synchronized String intentBefore(Call c) {
        String intent = "none";
        for (Call x : calls) {
            if (x == c) {
                break;
            }
            if (x.acceptance == Acceptance.YES) {
                intent = intentOf(x);
            }
        }
        return intent;
    }

    synchronized List<Call> calls() {
        return List.copyOf(calls);
    }

    synchronized Expectation expect() {
        int lastYes = 0;
        for (int i = 0; i < calls.size(); i++) {
            if (calls.get(i).acceptance == Acceptance.YES) {
                lastYes = i;
            }
        }
        List<Call> candidates = new ArrayList<>();
        candidates.add(calls.get(lastYes));
        for (int i = lastYes + 1; i < calls.size(); i++) {
            Acceptance a = calls.get(i).acceptance;
            if (a == Acceptance.MAYBE || a == Acceptance.PENDING) {
                candidates.add(calls.get(i));
            }
        }
        Set<Outcome> outcomes = EnumSet.noneOf(Outcome.class);
        Set<String> intents = new LinkedHashSet<>();
        StringBuilder why = new StringBuilder();
        for (Call c : candidates) {
            if (why.length() > 0) {
                why.append("; or, if qsupd took the later request '").append(c.line).append("' (")
                        .append(c.acceptance).append(c.note.isEmpty() ? "" : ", " + c.note).append("): ");
            } else {
                why.append("last accepted request '").append(c.line).append("' sent at ")
                        .append(clock.label(c.sentNanos)).append(": ");
            }
            intents.add(intentOf(c));
            why.append(outcomeFrom(c, outcomes));
        }
        return new Expectation(outcomes, intents, why.toString());
    }

    private static String intentOf(Call c) {
        return c.initial ? "none" : c.verb.intent();
    }

    private String outcomeFrom(Call c, Set<Outcome> out) {
        if (c.verb.stops()) {
            out.add(Outcome.STOPPED);
            return "an operator stop wins over every later crash and daemon restart -> stopped";
        }
        List<Kill> after = kills.stream().filter(k -> k.atNanos() > c.sentNanos).toList();
        if (after.isEmpty()) {
            out.add(Outcome.RUNNING);
            return "started and its QEMU never killed afterwards -> running";
        }
        Kill last = after.get(after.size() - 1);
        String killText = after.size() + " kill -9 of its QEMU afterwards, the last at " + clock.label(last.atNanos())
                + " (" + (last.clean() ? "clean: " : "not clean: ") + last.why() + ")";
        if (!last.clean()) {
            out.add(Outcome.RUNNING);
            out.add(Outcome.STOPPED);
            out.add(Outcome.LAUNCH_FAILED);
            return killText + " -> running, stopped, or failed with a launch error (a launch killed before the VM "
                    + "ever ran fails and is not retried, and a restart's start follows a kill during its stop)";
        }
        if (policy == Policy.NO) {
            out.add(Outcome.STOPPED);
            return killText + " -> restart: no leaves a crashed VM stopped";
        }
        out.add(Outcome.RUNNING);
        return killText + " -> restart: " + policy.name().toLowerCase(Locale.ROOT).replace('_', '-')
                + " brings a crashed VM back";
    }
}
