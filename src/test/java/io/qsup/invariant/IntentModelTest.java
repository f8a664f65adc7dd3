package io.qsup.invariant;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.invariant.IntentModel.Acceptance;
import io.qsup.invariant.IntentModel.Call;
import io.qsup.invariant.IntentModel.Kill;
import io.qsup.invariant.IntentModel.Outcome;
import io.qsup.invariant.IntentModel.Policy;
import io.qsup.invariant.IntentModel.Verb;
import org.junit.jupiter.api.Test;

/** The end states the invariant test's model allows, for small hand-made histories. */
class IntentModelTest {
    private final ActionLog clock = new ActionLog(null);
    private long t = clock.t0();

    private IntentModel model(Policy p) {
        return new IntentModel("vm", p, true, clock);
    }

    private Call accepted(IntentModel m, Verb v) {
        Call c = m.send(v, "qsup " + v, t += 1_000_000);
        m.settle(c, Acceptance.YES, "");
        return c;
    }

    private void kill(IntentModel m, boolean clean) {
        m.killed(new Kill(t += 1_000_000, clean, "test"));
    }

    @Test
    void autostartWithNothingElseIsRunningWithNoIntent() {
        IntentModel.Expectation e = model(Policy.NO).expect();
        assertThat(e.outcomes()).containsExactly(Outcome.RUNNING);
        assertThat(e.intents()).containsExactly("none");
    }

    @Test
    void aStopWinsOverEveryLaterCrash() {
        for (Verb stop : new Verb[] {Verb.STOP, Verb.KILL}) {
            IntentModel m = model(Policy.ALWAYS);
            accepted(m, Verb.RESTART);
            accepted(m, stop);
            kill(m, false);
            assertThat(m.expect().outcomes()).containsExactly(Outcome.STOPPED);
            assertThat(m.expect().intents()).containsExactly("stopped");
        }
    }

    @Test
    void aCleanCrashAfterAStartFollowsThePolicy() {
        for (Policy p : Policy.values()) {
            IntentModel m = model(p);
            accepted(m, Verb.STOP);
            accepted(m, Verb.START);
            kill(m, true);
            assertThat(m.expect().outcomes()).as("%s", p)
                    .containsExactly(p == Policy.NO ? Outcome.STOPPED : Outcome.RUNNING);
            assertThat(m.expect().intents()).containsExactly("started");
        }
    }

    @Test
    void onlyTheLastKillCountsAndAnUncleanOneAllowsEveryEnd() {
        IntentModel m = model(Policy.NO);
        accepted(m, Verb.START);
        kill(m, true);
        kill(m, false);
        assertThat(m.expect().outcomes())
                .containsExactlyInAnyOrder(Outcome.RUNNING, Outcome.STOPPED, Outcome.LAUNCH_FAILED);
        kill(m, true);
        assertThat(m.expect().outcomes()).containsExactly(Outcome.STOPPED);
    }

    @Test
    void killsBeforeTheLastRequestDoNotCount() {
        IntentModel m = model(Policy.NO);
        kill(m, true);
        accepted(m, Verb.RESTART);
        assertThat(m.expect().outcomes()).containsExactly(Outcome.RUNNING);
    }

    @Test
    void aRequestThatMayOrMayNotHaveArrivedAllowsBothHistories() {
        IntentModel m = model(Policy.ALWAYS);
        accepted(m, Verb.START);
        Call lost = m.send(Verb.STOP, "qsup stop", t += 1_000_000);
        m.settle(lost, Acceptance.MAYBE, "daemon went away");
        assertThat(m.expect().outcomes()).containsExactlyInAnyOrder(Outcome.RUNNING, Outcome.STOPPED);
        assertThat(m.expect().intents()).containsExactlyInAnyOrder("started", "stopped");
        assertThat(m.intentBefore(lost)).isEqualTo("started");

        Call never = m.send(Verb.STOP, "qsup stop", t += 1_000_000);
        m.settle(never, Acceptance.NO, "not reachable");
        m.settle(lost, Acceptance.NO, "persisted intent unchanged");
        assertThat(m.expect().outcomes()).containsExactly(Outcome.RUNNING);
    }
}
