// SPDX-License-Identifier: GPL-2.0
/*
 * pinit_tryboot: passes reboot(2)'s "tryboot" to the Raspberry Pi firmware.
 *
 * PID 1 (init/update.py) reboots into a freshly written boot slot with
 * reboot(LINUX_REBOOT_CMD_RESTART2, "0 tryboot"). The bootloader tries the other slot once
 * only when the firmware's reboot flag says so; Raspberry Pi's own kernel sets that flag in
 * its firmware driver's reboot notifier, Debian's (mainline) kernel has no such notifier.
 * This module is that notifier and nothing else: on a restart whose command contains
 * "tryboot" it sends the firmware the property RPI_FIRMWARE_SET_REBOOT_FLAGS with bit 0 set,
 * as Raspberry Pi's kernel does. Any other restart, halt or power-off is left alone (the
 * firmware clears the flag itself after one boot).
 *
 * The firmware is looked up at the reboot, not at load time: the module loads on any board,
 * and on one without the Raspberry Pi firmware (QEMU's virt) it says so and does nothing.
 * Built by builder/kbuild.py against the locked kernel's headers.
 */
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/of.h>
#include <linux/reboot.h>
#include <linux/string.h>
#include <soc/bcm2835/raspberrypi-firmware.h>

#define SET_REBOOT_FLAGS 0x00038064 /* Raspberry Pi's RPI_FIRMWARE_SET_REBOOT_FLAGS */
#define FLAG_TRYBOOT 0x1

static int pinit_tryboot_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct device_node *node;
	struct rpi_firmware *fw;
	u32 flags = FLAG_TRYBOOT;
	int ret;

	if (action != SYS_RESTART || !data || !strstr(data, "tryboot"))
		return NOTIFY_DONE;
	node = of_find_compatible_node(NULL, NULL, "raspberrypi,bcm2835-firmware");
	fw = node ? rpi_firmware_get(node) : NULL;
	of_node_put(node);
	if (!fw) {
		pr_err("pinit_tryboot: no Raspberry Pi firmware: the tryboot flag is not set\n");
		return NOTIFY_DONE;
	}
	ret = rpi_firmware_property(fw, SET_REBOOT_FLAGS, &flags, sizeof(flags));
	rpi_firmware_put(fw);
	if (ret)
		pr_err("pinit_tryboot: the firmware refused the tryboot flag (%d)\n", ret);
	else
		pr_notice("pinit_tryboot: tryboot flag set in the firmware\n");
	return NOTIFY_DONE;
}

static struct notifier_block pinit_tryboot_nb = {
	.notifier_call = pinit_tryboot_notify,
};

static int __init pinit_tryboot_init(void)
{
	return register_reboot_notifier(&pinit_tryboot_nb);
}

static void __exit pinit_tryboot_exit(void)
{
	unregister_reboot_notifier(&pinit_tryboot_nb);
}

module_init(pinit_tryboot_init);
module_exit(pinit_tryboot_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Passes reboot(2)'s tryboot to the Raspberry Pi firmware (pinit)");
