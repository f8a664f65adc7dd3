package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qsup logs NAME}: a VM's lifecycle log (launches, QEMU's own messages), or its serial console log. */
@Command(name = "logs", mixinStandardHelpOptions = true,
        description = "Print a VM's log: QEMU's launch and lifecycle messages, or with --serial its console output.",
        footer = {"", "Examples:", "  qsup logs web1", "  qsup logs web1 --serial -f"})
final class LogsCommand implements Callable<Integer> {
    @Mixin DaemonOptions daemon;
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME", description = "The VM.")
    String name;

    @Option(names = {"-f", "--follow"}, description = "Keep printing what is appended, until interrupted.")
    boolean follow;

    @Option(names = "--serial", description = "The serial console log instead of the QEMU log.")
    boolean serial;

    @Override
    public Integer call() throws IOException, InterruptedException {
        Path file;
        try (DaemonClient client = daemon.connect()) {
            JsonNode vm = client.call("query-vm", Json.object().put("name", name));
            file = Path.of(vm.path(serial ? "serial-log" : "qemu-log").asText());
        }
        if (!Files.exists(file) && !follow) {
            throw new CliException(ExitCodes.NOT_FOUND, "no log yet at " + file + " (the VM has not been started?)");
        }
        long pos = 0;
        byte[] buf = new byte[8192];
        while (true) {
            try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r")) {
                if (raf.length() < pos) {
                    pos = 0; // truncated or replaced: start over
                }
                raf.seek(pos);
                int n;
                while ((n = raf.read(buf)) > 0) {
                    System.out.write(buf, 0, n);
                    pos += n;
                }
                System.out.flush();
            } catch (NoSuchFileException | java.io.FileNotFoundException e) {
                pos = 0;
            }
            if (!follow) {
                return ExitCodes.OK;
            }
            Thread.sleep(250);
        }
    }
}
