package io.qsup.qmp;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Runs in a child JVM with a small heap: connects to a server that answers with a huge line and reports what the
 * client did, so the parent test can show the refusal happens without holding the line in memory.
 */
public final class OversizeProbe {
    private OversizeProbe() {}

    public static void main(String[] args) throws Exception {
        QmpClient.Options opts = QmpClient.Options.defaults().withDefaultTimeout(Duration.ofSeconds(60));
        try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(Path.of(args[0])), opts)) {
            c.execute("query-status");
            System.out.println("RESULT accepted");
        } catch (QmpDisconnectedException e) {
            System.out.println("RESULT disconnected: " + e.getMessage());
            System.out.println("CAUSE " + (e.getCause() == null ? "none" : e.getCause().getClass().getSimpleName()));
        }
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                peak += pool.getPeakUsage().getUsed();
            }
        }
        System.out.println("PEAK_HEAP " + peak);
        System.out.println("MAX_HEAP " + Runtime.getRuntime().maxMemory());
    }
}
