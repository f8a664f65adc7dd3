package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code qsup top}: a live view of every VM in the manner of virt-top and htop, from {@code query-vm-stats}: state,
 * CPU % of one core, resident memory, disk read and write rates, uptime, restarts and IP. On a terminal it redraws in
 * place, sorts by the column whose key is pressed, and quits with {@code q}; the terminal is restored on exit, on
 * Ctrl-C and on SIGTERM. Elsewhere (a pipe, a file) it prints a plain table every interval.
 *
 * <p>Threading: the main thread polls the daemon and draws; one platform thread ({@code top-keys}) reads the keyboard
 * and hands keys over through a queue.
 */
@Command(name = "top", mixinStandardHelpOptions = true,
        description = {"A live view of every VM: state, CPU %% of one core, resident memory (RSS), disk read and write",
            "rates, uptime, restarts and IP (shown once qsupd knows it). On a terminal, a key sorts by its column:",
            "n name, s state, c CPU, m RSS, r read, w write, u uptime, x restarts; q quits. Without a terminal, a",
            "plain table is printed every interval."},
        footer = {"", "Examples:", "  qsup top", "  qsup top --sort rss --interval 2s",
            "  qsup top -n 3 > snapshot.txt     three tables, one a second"})
final class TopCommand implements Callable<Integer> {
    /** The columns, each with the key that sorts by it; numbers sort biggest first, words in order. */
    enum Column {
        NAME("NAME", 'n'), STATE("STATE", 's'), CPU("CPU%", 'c'), RSS("RSS", 'm'), READ("READ/s", 'r'),
        WRITE("WRITE/s", 'w'), UPTIME("UPTIME", 'u'), RESTARTS("RESTARTS", 'x'), IP("IP", '\0');

        final String header;
        final char key;

        Column(String header, char key) {
            this.header = header;
            this.key = key;
        }

        static Column forKey(int key) {
            for (Column c : values()) {
                if (c.key != '\0' && c.key == key) {
                    return c;
                }
            }
            return switch (key) { // virt-top's keys
                case 'P' -> CPU;
                case 'M' -> RSS;
                case 'T' -> UPTIME;
                case 'N' -> NAME;
                default -> null;
            };
        }
    }

    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Option(names = {"-d", "--interval"}, paramLabel = "DURATION", defaultValue = "1s",
            description = "Time between refreshes: 500ms, 2s, ... (default: ${DEFAULT-VALUE}).")
    String interval;

    @Option(names = "--sort", paramLabel = "COLUMN", defaultValue = "cpu",
            description = "Column to sort by at start: name, state, cpu, rss, read, write, uptime, restarts"
                    + " (default: ${DEFAULT-VALUE}).")
    String sortName;

    @Option(names = {"-n", "--iterations"}, paramLabel = "N", defaultValue = "0",
            description = "Stop after N refreshes (default: run until q or Ctrl-C).")
    int iterations;

    /** What the last refresh showed of one VM, to turn counters into rates. */
    private record Seen(long pid, double cpu, double cpuAt, long read, long written, double blockAt, Double cpuPct,
                        Double readRate, Double writeRate) {}

    /** One row, its cells and its sort keys. */
    private record Row(String name, String state, Double cpu, Long rss, Double read, Double write, Double uptime,
                       long restarts, String ip) {}

    private final Map<String, Seen> seen = new HashMap<>();
    private Column sort;

    @Override
    public Integer call() throws Exception {
        double seconds = DurationArg.seconds(spec, "--interval", interval);
        if (seconds < 0.1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--interval must be at least 100ms");
        }
        if (iterations < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--iterations must be 0 or more");
        }
        sort = parseSort(sortName);
        long period = (long) (seconds * 1e9);
        try (DaemonClient client = daemon.connect(Duration.ofSeconds(10))) {
            if (output.json || !Table.isTerminal()) {
                return plain(client, period);
            }
            return live(client, period);
        }
    }

    private Column parseSort(String s) {
        for (Column c : Column.values()) {
            if (c != Column.IP && c.name().equalsIgnoreCase(s.trim())) {
                return c;
            }
        }
        throw new CommandLine.ParameterException(spec.commandLine(), "--sort: unknown column '" + s
                + "'; use name, state, cpu, rss, read, write, uptime or restarts");
    }

    /** A table (or with --json one JSON array per line) every interval. */
    private int plain(DaemonClient client, long period) throws InterruptedException {
        var out = spec.commandLine().getOut();
        long next = System.nanoTime();
        for (int n = 1; ; n++) {
            JsonNode stats = client.call("query-vm-stats");
            if (output.json) {
                out.println(stats.toString());
            } else {
                if (n > 1) {
                    out.println();
                }
                out.print(table(rows(stats)).render());
            }
            out.flush();
            if (iterations > 0 && n >= iterations) {
                return ExitCodes.OK;
            }
            next += period;
            TimeUnit.NANOSECONDS.sleep(Math.max(0, next - System.nanoTime()));
        }
    }

    /** Redraws in place on the alternate screen; keys sort, q quits. */
    private int live(DaemonClient client, long period) throws Exception {
        BlockingQueue<Integer> keys = new LinkedBlockingQueue<>();
        try (Screen screen = Screen.enter()) {
            Thread reader = Thread.ofPlatform().daemon(true).name("top-keys").start(() -> readKeys(System.in, keys));
            long next = System.nanoTime();
            for (int n = 1; ; n++) {
                List<Row> rows = rows(client.call("query-vm-stats"));
                screen.draw(frame(rows, period));
                if (iterations > 0 && n >= iterations) {
                    return ExitCodes.OK;
                }
                next += period;
                long left;
                while ((left = next - System.nanoTime()) > 0) {
                    Integer k = keys.poll(left, TimeUnit.NANOSECONDS);
                    if (k == null) {
                        break;
                    }
                    if (k == 'q' || k == 'Q' || k == 3 || k == 4) {
                        return ExitCodes.OK;
                    }
                    Column c = Column.forKey(k);
                    if (c != null && c != sort) {
                        sort = c;
                        screen.draw(frame(rows, period));
                    }
                }
            }
        }
    }

    private static void readKeys(InputStream in, BlockingQueue<Integer> keys) {
        try {
            int b;
            while ((b = in.read()) >= 0) {
                keys.add(b);
            }
        } catch (IOException e) {
            // the terminal went away; the main thread keeps drawing until it is interrupted
        }
    }

    private List<String> frame(List<Row> rows, long period) {
        Map<String, Integer> states = new TreeMap<>();
        rows.forEach(r -> states.merge(r.state(), 1, Integer::sum));
        StringBuilder summary = new StringBuilder();
        states.forEach((s, n) -> summary.append(summary.isEmpty() ? "" : ", ").append(n).append(' ').append(s));
        List<String> lines = new ArrayList<>();
        long ms = period / 1_000_000;
        lines.add("qsup top - " + rows.size() + " VMs" + (summary.isEmpty() ? "" : ": " + summary) + "   refresh "
                + (ms % 1000 == 0 ? ms / 1000 + "s" : ms + "ms") + "   sorted by " + sort.header);
        lines.add("keys: n s c m r w u x sort by column, q quits");
        lines.add("");
        String[] table = table(rows).render().split("\n");
        lines.add("\u001b[7m" + table[0] + "\u001b[0m");
        for (int i = 1; i < table.length; i++) {
            lines.add(table[i]);
        }
        return lines;
    }

    private Table table(List<Row> rows) {
        List<Row> sorted = new ArrayList<>(rows);
        sorted.sort(order(sort));
        List<String> headers = new ArrayList<>();
        for (Column c : Column.values()) {
            headers.add(c.header);
        }
        Table t = new Table(headers.toArray(String[]::new));
        for (Row r : sorted) {
            t.add(r.name(), r.state(), r.cpu() == null ? "-" : String.format(Locale.ROOT, "%.1f", r.cpu()),
                    r.rss() == null ? "-" : size(r.rss()), rate(r.read()), rate(r.write()),
                    r.uptime() == null ? "-" : VmText.duration(Duration.ofMillis((long) (r.uptime() * 1000))),
                    Long.toString(r.restarts()), r.ip() == null ? "-" : r.ip());
        }
        return t;
    }

    private static Comparator<Row> order(Column c) {
        Comparator<Row> byName = Comparator.comparing(Row::name);
        Comparator<Row> primary = switch (c) {
            case NAME, IP -> byName;
            case STATE -> Comparator.comparing(Row::state);
            case CPU -> numeric(Row::cpu);
            case RSS -> numeric(r -> r.rss() == null ? null : r.rss().doubleValue());
            case READ -> numeric(Row::read);
            case WRITE -> numeric(Row::write);
            case UPTIME -> numeric(Row::uptime);
            case RESTARTS -> numeric(r -> (double) r.restarts());
        };
        return primary.thenComparing(byName);
    }

    /** Biggest first, unknown last. */
    private static Comparator<Row> numeric(java.util.function.Function<Row, Double> f) {
        return Comparator.comparing(f, Comparator.nullsLast(Comparator.<Double>reverseOrder()));
    }

    /** Turns one reply into rows, keeping the counters of this refresh for the next one's rates. */
    private List<Row> rows(JsonNode stats) {
        List<Row> rows = new ArrayList<>();
        Map<String, Seen> now = new HashMap<>();
        for (JsonNode vm : stats) {
            String name = vm.path("name").asText();
            long pid = vm.path("pid").asLong(-1);
            Seen before = seen.get(name);
            if (before != null && before.pid() != pid) {
                before = null; // another QEMU: its counters started over
            }
            Double cpuPct = null;
            Double readRate = null;
            Double writeRate = null;
            double cpu = vm.path("cpu-seconds").asDouble(Double.NaN);
            double cpuAt = vm.path("sampled-at").asDouble(Double.NaN);
            long read = 0;
            long written = 0;
            for (JsonNode d : vm.path("block")) {
                read += d.path("read-bytes").asLong();
                written += d.path("written-bytes").asLong();
            }
            double blockAt = vm.path("block-sampled-at").asDouble(Double.NaN);
            if (before != null) {
                cpuPct = before.cpuPct();
                readRate = before.readRate();
                writeRate = before.writeRate();
                double dt = cpuAt - before.cpuAt();
                if (dt > 0) {
                    cpuPct = Math.max(0, (cpu - before.cpu()) / dt * 100);
                }
                double db = blockAt - before.blockAt();
                if (db > 0) {
                    readRate = Math.max(0, (read - before.read()) / db);
                    writeRate = Math.max(0, (written - before.written()) / db);
                }
            }
            boolean live = pid > 0 && !Double.isNaN(cpu);
            if (pid > 0) {
                now.put(name, new Seen(pid, cpu, cpuAt, read, written, blockAt, cpuPct, readRate, writeRate));
            }
            JsonNode up = vm.get("uptime-seconds");
            JsonNode ip = vm.get("ip");
            rows.add(new Row(name, vm.path("state").asText("?") + (vm.path("unresponsive").asBoolean() ? "!" : ""),
                    live ? cpuPct : null, vm.path("rss-bytes").isNumber() ? vm.path("rss-bytes").asLong() : null,
                    pid > 0 ? readRate : null, pid > 0 ? writeRate : null,
                    up == null || up.isNull() ? null : up.asDouble(), vm.path("restarts").asLong(),
                    ip == null || ip.isNull() ? null : ip.asText()));
        }
        seen.clear();
        seen.putAll(now);
        return rows;
    }

    static String size(double bytes) {
        String[] units = {"", "K", "M", "G", "T"};
        int u = 0;
        while (bytes >= 1024 && u < units.length - 1) {
            bytes /= 1024;
            u++;
        }
        return u == 0 ? Long.toString((long) bytes) : String.format(Locale.ROOT, bytes < 10 ? "%.1f%s" : "%.0f%s",
                bytes, units[u]);
    }

    private static String rate(Double bytesPerSecond) {
        return bytesPerSecond == null ? "-" : size(bytesPerSecond);
    }

    /**
     * The terminal while {@code top} runs: no echo, keys without Enter (Ctrl-C still interrupts), the alternate screen
     * and a hidden cursor; all of it undone on close and, through a shutdown hook, on Ctrl-C or SIGTERM.
     */
    static final class Screen implements AutoCloseable {
        private static final String ENTER = "\u001b[?1049h\u001b[?25l";
        private static final String LEAVE = "\u001b[?25h\u001b[?1049l";
        private final String saved;
        private final Thread hook;
        private final PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false,
                StandardCharsets.UTF_8);
        private boolean restored;

        private Screen(String saved) {
            this.saved = saved;
            this.hook = new Thread(this::restore, "top-restore");
            Runtime.getRuntime().addShutdownHook(hook);
            out.print(ENTER);
            out.flush();
        }

        static Screen enter() throws IOException, InterruptedException {
            String saved = stty("-g").trim();
            stty("-icanon", "-echo", "min", "1", "time", "0");
            return new Screen(saved);
        }

        /** Draws the lines from the top left, cut to the window, and clears what the last frame left below. */
        void draw(List<String> lines) {
            int[] size = windowSize();
            StringBuilder sb = new StringBuilder("\u001b[H");
            int rows = Math.min(lines.size(), size[0]);
            for (int i = 0; i < rows; i++) {
                sb.append(cut(lines.get(i), size[1])).append("\u001b[0m\u001b[K");
                if (i < rows - 1) {
                    sb.append("\r\n");
                }
            }
            sb.append("\u001b[J");
            out.print(sb);
            out.flush();
        }

        /** Cuts a line to {@code width} visible characters, keeping its ANSI codes. */
        private static String cut(String line, int width) {
            StringBuilder sb = new StringBuilder();
            int visible = 0;
            for (int i = 0; i < line.length(); i++) {
                char ch = line.charAt(i);
                if (ch == '\u001b') {
                    int end = line.indexOf('m', i);
                    if (end > 0) {
                        sb.append(line, i, end + 1);
                        i = end;
                        continue;
                    }
                }
                if (visible == width) {
                    break;
                }
                sb.append(ch);
                visible++;
            }
            return sb.toString();
        }

        private static int[] windowSize() {
            try {
                String[] f = stty("size").trim().split("\\s+");
                return new int[] {Integer.parseInt(f[0]), Integer.parseInt(f[1])};
            } catch (IOException | RuntimeException e) {
                return new int[] {24, 80};
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return new int[] {24, 80};
            }
        }

        private static String stty(String... args) throws IOException, InterruptedException {
            return ConsoleCommand.TerminalMode.stty(args);
        }

        private synchronized void restore() {
            if (restored) {
                return;
            }
            restored = true;
            out.print(LEAVE);
            out.flush();
            try {
                stty(saved);
            } catch (IOException e) {
                System.err.println("qsup: could not restore the terminal; run 'stty sane'");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Override
        public void close() {
            restore();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // already shutting down: the hook has run or runs anyway
            }
        }
    }
}
