package io.qsup.daemon;

/** Entry point of the {@code qsupd} daemon. */
public final class QsupdMain {
    private QsupdMain() {}

    public static void main(String[] args) {
        for (String a : args) {
            if (a.equals("--version") || a.equals("-V")) {
                System.out.println("qsupd " + Version.get());
                return;
            }
        }
        System.out.println("qsupd " + Version.get());
    }
}
